"""Experiments on SQL: create, read, list and delete, and the keys their runs use."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy import exc as sa_exc

from keel.errors import AlreadyExists, NotFound
from keel.governance.chain import Entry, append
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.tracking.entities import (
    Experiment,
    ExperimentKeys,
)

__all__ = ["SqlExperiments"]

_ACTIVE = "active"
_DELETED = "deleted"


class SqlExperiments:
    """Experiments: create, read, list, delete (mixed into ``SqlTrackingStore``)."""

    # Provided by SqlTrackingStore.
    db: Database

    # -- experiments ---------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        now = now_ms()
        experiment_id = uuid.uuid4().hex
        try:
            with self.db.write() as conn:
                conn.execute(
                    t.experiments.insert().values(
                        experiment_id=experiment_id,
                        name=name,
                        description=description,
                        artifact_location=artifact_location,
                        lifecycle_stage=_ACTIVE,
                        created_at=now,
                        updated_at=now,
                    )
                )
                if tags:
                    conn.execute(
                        t.experiment_tags.insert(),
                        [
                            {"experiment_id": experiment_id, "key": k, "value": v}
                            for k, v in tags.items()
                        ],
                    )
                change = {"name": name, "tags": dict(tags or {})}
                append(conn, [Entry("experiment.create", "experiment", experiment_id, change)])
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"an experiment named {name!r} already exists") from None
        return self.get_experiment(experiment_id)

    def _experiment_from(self, conn: Connection, row: Any) -> Experiment:
        tag_rows = conn.execute(
            select(t.experiment_tags.c.key, t.experiment_tags.c.value).where(
                t.experiment_tags.c.experiment_id == row.experiment_id
            )
        )
        return Experiment(
            experiment_id=row.experiment_id,
            name=row.name,
            description=row.description,
            artifact_location=row.artifact_location,
            lifecycle_stage=row.lifecycle_stage,
            created_at=row.created_at,
            updated_at=row.updated_at,
            tags={key: value for key, value in tag_rows},
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        with self.db.read() as conn:
            row = conn.execute(
                select(t.experiments).where(t.experiments.c.experiment_id == experiment_id)
            ).first()
            if row is None:
                raise NotFound(f"no experiment with id {experiment_id!r}")
            return self._experiment_from(conn, row)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        with self.db.read() as conn:
            row = conn.execute(select(t.experiments).where(t.experiments.c.name == name)).first()
            return None if row is None else self._experiment_from(conn, row)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        query = select(t.experiments).order_by(t.experiments.c.created_at)
        if not include_deleted:
            query = query.where(t.experiments.c.lifecycle_stage == _ACTIVE)
        with self.db.read() as conn:
            return [self._experiment_from(conn, row) for row in conn.execute(query)]

    def delete_experiment(self, experiment_id: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(t.experiments)
                .where(t.experiments.c.experiment_id == experiment_id)
                .values(lifecycle_stage=_DELETED, updated_at=now_ms())
            )
            if done.rowcount == 0:
                raise NotFound(f"no experiment with id {experiment_id!r}")
            conn.execute(
                update(t.runs)
                .where(t.runs.c.experiment_id == experiment_id)
                .values(lifecycle_stage=_DELETED)
            )
            append(conn, [Entry("experiment.delete", "experiment", experiment_id, {})])

    def get_experiment_keys(self, experiment_id: str) -> ExperimentKeys:
        found: dict[str, tuple[str, ...]] = {}
        with self.db.read() as conn:
            exists = conn.execute(
                select(t.experiments.c.experiment_id).where(
                    t.experiments.c.experiment_id == experiment_id
                )
            ).first()
            if exists is None:
                raise NotFound(f"no experiment with id {experiment_id!r}")
            for kind, table in (
                ("metrics", t.latest_metrics),
                ("params", t.params),
                ("tags", t.tags),
            ):
                query = (
                    select(table.c.key)
                    .distinct()
                    .join(t.runs, t.runs.c.run_id == table.c.run_id)
                    .where(
                        t.runs.c.experiment_id == experiment_id,
                        t.runs.c.lifecycle_stage == _ACTIVE,
                    )
                    .order_by(table.c.key)
                )
                found[kind] = tuple(conn.execute(query).scalars())
        return ExperimentKeys(**found)
