"""The dataset-input and artifact-index half of the SQL tracking store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, literal, or_, select, union_all

from keel.errors import NotFound
from keel.governance.chain import Entry, append
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.tracking.entities import ArtifactEntry, DatasetInput, Run, RunSnapshot, RunStatus

__all__ = ["SqlRunAssets", "inputs_change", "insert_inputs"]


class SqlRunAssets:
    """Datasets a run consumed and the files it logged (mixed into ``SqlTrackingStore``)."""

    # Both provided by SqlTrackingStore.
    db: Database
    _require_run: Callable[[Connection, str], Any]

    # -- inputs and artifacts ------------------------------------------------------------
    def log_inputs(self, run_id: str, inputs: Iterable[DatasetInput]) -> None:
        inputs = list(inputs)
        if not inputs:
            return
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            insert_inputs(self.db, conn, run_id, inputs)
            append(conn, [Entry("run.inputs", "run", run_id, inputs_change(inputs))])

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            return _inputs(conn, run_id)

    def add_artifacts(self, run_id: str, entries: Iterable[ArtifactEntry]) -> None:
        rows = [
            {
                "run_id": run_id,
                "path": e.path,
                "digest": e.digest,
                "size": e.size,
                "created_at": now_ms(),
            }
            for e in entries
        ]
        if not rows:
            return
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            self.db.upsert(
                conn,
                t.run_artifacts,
                rows,
                keys=["run_id", "path"],
                update=["digest", "size", "created_at"],
            )
            change = {"artifacts": {r["path"]: r["digest"] for r in rows}}
            append(conn, [Entry("run.artifacts", "run", run_id, change)])

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
        with self.db.read() as conn:
            entries = _artifacts(conn, run_id, prefix)
            if not entries:
                self._require_run(conn, run_id)  # NotFound for an unknown run
            return entries

    def get_run_snapshot(self, run_id: str, prefix: str | None = None) -> RunSnapshot:
        params: dict[str, str] = {}
        tags: dict[str, str] = {}
        metrics: dict[str, float] = {}
        with self.db.read() as conn:
            row = conn.execute(_RUN, {"run_id": run_id}).first()
            if row is None:
                raise NotFound(f"no run with id {run_id!r}")
            for kind, key, value in conn.execute(_RUN_VALUES, {"run_id": run_id}):
                if kind == 0:
                    params[key] = value
                elif kind == 1:
                    tags[key] = value
                else:  # Python's exact repr of the latest value ("nan", "inf" included)
                    metrics[key] = float(value)
            inputs, artifacts = _inputs(conn, run_id), _artifacts(conn, run_id, prefix)
        (run_id, experiment_id, name, status, start, end, user, source, commit, dirty,
         parent, stage, heartbeat) = row  # fmt: skip
        run = Run(
            run_id, experiment_id, name, RunStatus(status), start, end, user, source, commit,
            None if dirty is None else bool(dirty), parent, stage, heartbeat,
            params, metrics, tags,
        )  # fmt: skip
        return RunSnapshot(run, inputs, artifacts)


def insert_inputs(db: Database, conn: Connection, run_id: str, inputs: list[DatasetInput]) -> None:
    """Record datasets ``run_id`` consumed (each dataset version stored once, by digest)."""
    for item in inputs:
        db.upsert(
            conn,
            t.datasets,
            [
                {
                    "dataset_id": uuid.uuid4().hex,
                    "name": item.name,
                    "digest": item.digest,
                    "source": item.source,
                    "schema": json.dumps(item.schema) if item.schema else None,
                    "profile": json.dumps(item.profile) if item.profile else None,
                    "created_at": now_ms(),
                }
            ],
            keys=["name", "digest"],
            update=[],
        )
        dataset_id = conn.execute(
            select(t.datasets.c.dataset_id).where(
                t.datasets.c.name == item.name, t.datasets.c.digest == item.digest
            )
        ).scalar_one()
        db.upsert(
            conn,
            t.run_inputs,
            [{"run_id": run_id, "dataset_id": dataset_id, "context": item.context}],
            keys=["run_id", "dataset_id", "context"],
            update=[],
        )


def inputs_change(inputs: list[DatasetInput]) -> dict[str, Any]:
    """Return the audit change of a ``run.inputs`` entry."""
    return {"inputs": [{"name": i.name, "digest": i.digest, "context": i.context} for i in inputs]}


# Statements built once: SQLAlchemy then reuses their cache keys and compiled forms, where
# a statement built anew on every call costs more in Python than running it.
_d, _ri, _a = t.datasets, t.run_inputs, t.run_artifacts
_INPUTS = (
    select(_d.c.name, _d.c.digest, _d.c.source, _d.c.schema, _d.c.profile, _ri.c.context)
    .join(_ri, _ri.c.dataset_id == _d.c.dataset_id)
    .where(_ri.c.run_id == bindparam("run_id"))
    .order_by(_ri.c.context, _d.c.name)
)
_ARTIFACTS = select(_a.c.path, _a.c.digest, _a.c.size).where(_a.c.run_id == bindparam("run_id"))
_ARTIFACTS_ALL = _ARTIFACTS.order_by(_a.c.path)
_ARTIFACTS_UNDER = _ARTIFACTS.where(
    or_(_a.c.path == bindparam("prefix"), _a.c.path.like(bindparam("pattern"), escape="\\"))
).order_by(_a.c.path)


_r = t.runs
_RUN = select(
    _r.c.run_id, _r.c.experiment_id, _r.c.name, _r.c.status, _r.c.start_time, _r.c.end_time,
    _r.c.user, _r.c.source, _r.c.git_commit, _r.c.git_dirty, _r.c.parent_run_id,
    _r.c.lifecycle_stage, _r.c.heartbeat_at,
).where(_r.c.run_id == bindparam("run_id"))  # fmt: skip
# (0, param) / (1, tag) / (2, latest metric as value_text) rows of one run
_RUN_VALUES = union_all(
    select(literal(0), t.params.c.key, t.params.c.value).where(
        t.params.c.run_id == bindparam("run_id")
    ),
    select(literal(1), t.tags.c.key, t.tags.c.value).where(t.tags.c.run_id == bindparam("run_id")),
    select(literal(2), t.latest_metrics.c.key, t.latest_metrics.c.value_text).where(
        t.latest_metrics.c.run_id == bindparam("run_id")
    ),
)


def _inputs(conn: Connection, run_id: str) -> list[DatasetInput]:
    return [
        DatasetInput(
            name=r.name,
            digest=r.digest,
            source=r.source,
            context=r.context,
            schema=json.loads(r.schema) if r.schema else None,
            profile=json.loads(r.profile) if r.profile else None,
        )
        for r in conn.execute(_INPUTS, {"run_id": run_id})
    ]


def _artifacts(conn: Connection, run_id: str, prefix: str | None) -> list[ArtifactEntry]:
    if prefix:
        prefix = prefix.strip("/")
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params = {"run_id": run_id, "prefix": prefix, "pattern": f"{escaped}/%"}
        rows = conn.execute(_ARTIFACTS_UNDER, params)
    else:
        rows = conn.execute(_ARTIFACTS_ALL, {"run_id": run_id})
    return [ArtifactEntry(path, digest, size) for path, digest, size in rows]
