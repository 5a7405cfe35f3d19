"""The tracking store on SQLite or PostgreSQL (one implementation, SQLAlchemy Core)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, or_, select, text, update

from keel.errors import Conflict, NotFound
from keel.governance.chain import Entry, append
from keel.store import schema as t
from keel.store.database import Database
from keel.tracking.entities import (
    Metric,
    Run,
    RunStatus,
)
from keel.tracking.run_json import EMPTY, RunJson, dump_strings
from keel.tracking.sql_assets import SqlRunAssets
from keel.tracking.sql_experiments import SqlExperiments
from keel.tracking.sql_rows import hydrate, run_columns
from keel.tracking.sql_run_writes import SqlRunWrites
from keel.tracking.sql_search import SqlRunSearch
from keel.tracking.store import MetricRow, TrackingStore

__all__ = ["SqlTrackingStore"]

_ACTIVE = "active"
_DELETED = "deleted"


def _latest_wins(table: Any, excluded: Any) -> Any:
    # A point replaces the latest value when its step is higher, or equal and not older.
    return or_(
        excluded.step > table.c.step,
        and_(excluded.step == table.c.step, excluded.timestamp >= table.c.timestamp),
    )


class SqlTrackingStore(SqlExperiments, SqlRunAssets, SqlRunSearch, SqlRunWrites, TrackingStore):
    """Tracking on a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        if db.dialect == "sqlite":
            self._insert_metrics_sql = (
                "INSERT OR IGNORE INTO metrics (run_id, key, value, timestamp, step, is_nan) "
                "VALUES (?, ?, ?, ?, ?, ?)"
            )
        else:
            self._insert_metrics_sql = (
                "INSERT INTO metrics (run_id, key, value, timestamp, step, is_nan) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
            )

    def ping(self) -> None:
        """Return once the database answers ``SELECT 1``; ``StoreUnavailable`` if not."""
        with self.db.read() as conn:
            conn.execute(text("SELECT 1"))

    # -- runs ----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        user: str,
        start_time: int,
        source: str | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        writer: str | None = None,
    ) -> Run:
        run_id = uuid.uuid4().hex
        with self.db.write() as conn:
            experiment = conn.execute(
                select(t.experiments.c.lifecycle_stage).where(
                    t.experiments.c.experiment_id == experiment_id
                )
            ).scalar()
            if experiment is None:
                raise NotFound(f"no experiment with id {experiment_id!r}")
            if experiment != _ACTIVE:
                raise Conflict(f"experiment {experiment_id!r} is deleted; restore it first")
            if parent_run_id is not None and not self._run_exists(conn, parent_run_id):
                raise NotFound(f"parent run {parent_run_id!r} does not exist")
            conn.execute(
                t.runs.insert().values(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    name=name,
                    status=RunStatus.RUNNING.value,
                    start_time=start_time,
                    end_time=None,
                    user=user,
                    source=source,
                    git_commit=git_commit,
                    git_dirty=git_dirty,
                    parent_run_id=parent_run_id,
                    lifecycle_stage=_ACTIVE,
                    heartbeat_at=start_time,
                    writer=writer,
                    params_json=EMPTY,
                    metrics_json=EMPTY,
                    tags_json=dump_strings(dict(tags or {})),
                )
            )
            if tags:
                conn.execute(
                    t.tags.insert(),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                )
            change = {
                "experiment_id": experiment_id,
                "name": name,
                "user": user,
                "parent_run_id": parent_run_id,
                "tags": dict(tags or {}),
            }
            append(conn, [Entry("run.create", "run", run_id, change)])
        return self.get_run(run_id)

    @staticmethod
    def _run_exists(conn: Connection, run_id: str) -> bool:
        found = conn.execute(select(t.runs.c.run_id).where(t.runs.c.run_id == run_id)).first()
        return found is not None

    def _require_run(self, conn: Connection, run_id: str) -> Any:
        row = conn.execute(
            select(t.runs.c.status, t.runs.c.lifecycle_stage, t.runs.c.writer).where(
                t.runs.c.run_id == run_id
            )
        ).first()
        if row is None:
            raise NotFound(f"no run with id {run_id!r}")
        return row

    def get_run(self, run_id: str) -> Run:
        with self.db.read() as conn:
            row = conn.execute(
                select(*run_columns(self.db.dialect)).where(t.runs.c.run_id == run_id)
            ).first()
            if row is None:
                raise NotFound(f"no run with id {run_id!r}")
            return hydrate([row])[0]

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(status=status.value, end_time=end_time, writer=None)
            )
            change = {"status": status.value, "end_time": end_time}
            append(conn, [Entry("run.end", "run", run_id, change)])
        return self.get_run(run_id)

    def claim_run(self, run_id: str, writer: str, now: int, timeout_ms: int) -> Run:
        with self.db.write() as conn:
            row = conn.execute(
                select(t.runs.c.status, t.runs.c.writer, t.runs.c.heartbeat_at).where(
                    t.runs.c.run_id == run_id
                )
            ).first()
            if row is None:
                raise NotFound(f"no run with id {run_id!r}")
            alive = (
                row.status == RunStatus.RUNNING.value
                and row.writer not in (None, writer)
                and row.heartbeat_at is not None
                and now - row.heartbeat_at < timeout_ms
            )
            if alive:
                raise Conflict(
                    f"run {run_id} is being written by another process ({row.writer}, "
                    f"last heartbeat {(now - row.heartbeat_at) / 1000:.1f}s ago); end it there "
                    "first, or wait for its heartbeat to time out"
                )
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id)
                .values(
                    status=RunStatus.RUNNING.value, end_time=None, writer=writer, heartbeat_at=now
                )
            )
            append(conn, [Entry("run.claim", "run", run_id, {"writer": writer})])
        return self.get_run(run_id)

    def heartbeat(self, run_id: str, writer: str, now: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                update(t.runs)
                .where(t.runs.c.run_id == run_id, t.runs.c.writer == writer)
                .values(heartbeat_at=now)
            )

    def fail_stale_runs(self, now: int, timeout_ms: int) -> list[str]:
        stale = and_(
            t.runs.c.status == RunStatus.RUNNING.value,
            t.runs.c.heartbeat_at < now - timeout_ms,
        )
        failure = {"keel.failure": "heartbeat timed out"}
        with self.db.write() as conn:
            # Locked (on PostgreSQL) like any write to a run's tags (see RunJson), in run_id
            # order so that two collectors cannot deadlock on each other's rows.
            found = conn.execute(
                select(t.runs.c.run_id, t.runs.c.tags_json)
                .where(stale)
                .order_by(t.runs.c.run_id)
                .with_for_update()
            ).all()
            ids = [run_id for run_id, _ in found]
            if ids:
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.run_id.in_(ids))
                    .values(status=RunStatus.FAILED.value, end_time=now, writer=None)
                )
                self.db.upsert(
                    conn,
                    t.tags,
                    [{"run_id": i, "key": k, "value": v} for i in ids for k, v in failure.items()],
                    keys=["run_id", "key"],
                    update=["value"],
                )
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.run_id == bindparam("id"))
                    .values(tags_json=bindparam("tags")),
                    [
                        {"id": i, "tags": dump_strings({**orjson.loads(tags), **failure})}
                        for i, tags in found
                    ],
                )
                change = {"status": RunStatus.FAILED.value, "reason": "heartbeat timed out"}
                append(conn, [Entry("run.fail_stale", "run", i, change) for i in ids])
        return ids

    def delete_run(self, run_id: str) -> None:
        with self.db.write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                update(t.runs).where(t.runs.c.run_id == run_id).values(lifecycle_stage=_DELETED)
            )
            append(conn, [Entry("run.delete", "run", run_id, {})])

    # -- params, metrics, tags -----------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricRow] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not metrics and not params and not tags:
            return
        with self.db.write() as conn:
            copies = RunJson.lock(conn, run_id)
            if copies is None:
                raise NotFound(f"no run with id {run_id!r}")
            # Params and tags are state and audited; metric points are data and are not.
            entries = []
            if params:
                new = self._insert_params(conn, run_id, params)
                if new:
                    entries.append(Entry("run.params", "run", run_id, new))
                    copies.add_params(new)
            if tags:
                entries.append(Entry("run.tags", "run", run_id, dict(tags)))
                self.db.upsert(
                    conn,
                    t.tags,
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                    keys=["run_id", "key"],
                    update=["value"],
                )
                copies.set_tags(tags)
            if metrics:
                copies.refresh_metrics(self._insert_metrics(conn, run_id, metrics))
            copies.write()
            if entries:
                append(conn, entries)

    def _insert_params(
        self, conn: Connection, run_id: str, params: Mapping[str, str]
    ) -> dict[str, str]:
        """Insert the params not logged yet; return them (Conflict if one would change)."""
        existing = dict(
            conn.execute(
                select(t.params.c.key, t.params.c.value).where(
                    t.params.c.run_id == run_id, t.params.c.key.in_(list(params))
                )
            ).all()
        )
        for key, value in params.items():
            if key in existing and existing[key] != value:
                raise Conflict(
                    f"param {key!r} of run {run_id} is already {existing[key]!r}; params are "
                    f"immutable, so it cannot become {value!r} (log it under a new key)"
                )
        new = {k: v for k, v in params.items() if k not in existing}
        if new:
            conn.execute(
                t.params.insert(),
                [{"run_id": run_id, "key": k, "value": v} for k, v in new.items()],
            )
        return new

    def _insert_metrics(
        self, conn: Connection, run_id: str, rows: Sequence[MetricRow]
    ) -> list[str]:
        """Insert metric points and upsert the latest ones; return the keys logged."""
        # One pass builds the insert rows and finds each key's latest point (highest step,
        # then newest timestamp); this loop is the Python cost of every flushed point.
        values: list[tuple[str, str, float, int, int, bool]] = []
        append = values.append
        latest: dict[str, MetricRow] = {}
        for row in rows:
            key, value, ts, step = row
            if value != value:  # noqa: PLR0124 -- NaN: stored as 0 with is_nan (SQLite has no NaN)
                append((run_id, key, 0.0, ts, step, True))
            else:
                append((run_id, key, value, ts, step, False))
            best = latest.get(key)
            if best is None or step > best[3] or (step == best[3] and ts >= best[2]):
                latest[key] = row
        conn.exec_driver_sql(self._insert_metrics_sql, values)
        self.db.upsert(
            conn,
            t.latest_metrics,
            [
                {
                    "run_id": run_id,
                    "key": key,
                    "value": 0.0 if math.isnan(value) else value,
                    "value_text": repr(float(value)),
                    "timestamp": ts,
                    "step": step,
                    "is_nan": math.isnan(value),
                }
                for key, value, ts, step in latest.values()
            ],
            keys=["run_id", "key"],
            update=["value", "value_text", "timestamp", "step", "is_nan"],
            where=_latest_wins,
        )
        return list(latest)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        m = t.metrics
        with self.db.read() as conn:
            self._require_run(conn, run_id)
            rows = conn.execute(
                select(m.c.value, m.c.step, m.c.timestamp, m.c.is_nan)
                .where(m.c.run_id == run_id, m.c.key == key)
                .order_by(m.c.step, m.c.timestamp)
            )
            return [
                Metric(key, math.nan if is_nan else value, step, ts)
                for value, step, ts, is_nan in rows
            ]
