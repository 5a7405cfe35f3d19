"""The dataset-input and artifact-index half of the SQL tracking store."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Connection, or_, select

from keel.governance.chain import Entry, append
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.tracking.entities import ArtifactEntry, DatasetInput

__all__ = ["SqlRunAssets"]


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
            for item in inputs:
                self.db.upsert(
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
                self.db.upsert(
                    conn,
                    t.run_inputs,
                    [{"run_id": run_id, "dataset_id": dataset_id, "context": item.context}],
                    keys=["run_id", "dataset_id", "context"],
                    update=[],
                )
            change = {
                "inputs": [
                    {"name": i.name, "digest": i.digest, "context": i.context} for i in inputs
                ]
            }
            append(conn, [Entry("run.inputs", "run", run_id, change)])

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        d, ri = t.datasets, t.run_inputs
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                select(d.c.name, d.c.digest, d.c.source, d.c.schema, d.c.profile, ri.c.context)
                .join(ri, ri.c.dataset_id == d.c.dataset_id)
                .where(ri.c.run_id == run_id)
                .order_by(ri.c.context, d.c.name)
            )
            return [
                DatasetInput(
                    name=r.name,
                    digest=r.digest,
                    source=r.source,
                    context=r.context,
                    schema=json.loads(r.schema) if r.schema else None,
                    profile=json.loads(r.profile) if r.profile else None,
                )
                for r in rows
            ]

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
        a = t.run_artifacts
        query = select(a.c.path, a.c.digest, a.c.size).where(a.c.run_id == run_id)
        if prefix:
            prefix = prefix.strip("/")
            escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(or_(a.c.path == prefix, a.c.path.like(f"{escaped}/%", escape="\\")))
        with self.db.read() as conn:
            entries = [
                ArtifactEntry(path, digest, size)
                for path, digest, size in conn.execute(query.order_by(a.c.path))
            ]
            if not entries:
                self._require_run(conn, run_id)  # NotFound for an unknown run
            return entries
