"""Selects runs with their params, tags and latest metrics, and builds ``Run``s.

A search page of 1,000 runs carries some 20,000 param and metric values, and fetching
them as rows costs more in Python than the query itself. So each run's params and tags
come back with it as one JSON object per run, aggregated by the database
(``json_group_object`` on SQLite, ``json_object_agg`` on PostgreSQL). Metric values do
not: SQLite's float-to-text conversion is not exact for every double, so they are read
as native floats, one query for the whole page, grouped by run id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, func, select

from keel.store import schema as t
from keel.tracking.entities import Run, RunStatus

__all__ = ["hydrate", "run_columns"]

_STATUS = {status.value: status for status in RunStatus}
_RUN_FIELDS = (
    "run_id", "experiment_id", "name", "status", "start_time", "end_time", "user", "source",
    "git_commit", "git_dirty", "parent_run_id", "lifecycle_stage", "heartbeat_at",
)  # fmt: skip
_SQLITE_CHUNK = 900  # stays under SQLite's host-parameter limit on old builds
_METRICS = "SELECT run_id, key, value, is_nan FROM latest_metrics WHERE run_id"


def _json_object(dialect: str, table: Any) -> ColumnElement[Any]:
    aggregate = func.json_object_agg if dialect == "postgresql" else func.json_group_object
    return (
        select(aggregate(table.c.key, table.c.value))
        .where(table.c.run_id == t.runs.c.run_id)
        .scalar_subquery()
    )


def run_columns(dialect: str) -> list[ColumnElement[Any]]:
    """Return the runs columns plus each run's params and tags as JSON objects."""
    return [
        *(t.runs.c[name] for name in _RUN_FIELDS),
        _json_object(dialect, t.params).label("params_json"),
        _json_object(dialect, t.tags).label("tags_json"),
    ]


def _object(value: Any) -> dict[str, Any]:
    if value is None:  # PostgreSQL aggregates nothing to NULL
        return {}
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value  # psycopg has already decoded json


def _metrics(conn: Connection, ids: list[str]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {run_id: {} for run_id in ids}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(f"{_METRICS} = ANY(%s)", (ids,))
            batches = [cursor.fetchall()]
        else:
            batches = []
            for start in range(0, len(ids), _SQLITE_CHUNK):
                chunk = ids[start : start + _SQLITE_CHUNK]
                cursor.execute(f"{_METRICS} IN ({','.join('?' * len(chunk))})", chunk)
                batches.append(cursor.fetchall())
    finally:
        cursor.close()
    nan = math.nan
    for batch in batches:
        for run_id, key, value, is_nan in batch:
            found[run_id][key] = nan if is_nan else value
    return found


def hydrate(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    """Return ``Run``s for rows selected with ``run_columns``, with their latest metrics."""
    if not rows:
        return []
    metrics = _metrics(conn, [row[0] for row in rows])
    return [
        Run(
            run_id,
            experiment_id,
            name,
            _STATUS[status],
            start_time,
            end_time,
            user,
            source,
            git_commit,
            None if git_dirty is None else bool(git_dirty),
            parent_run_id,
            lifecycle_stage,
            heartbeat_at,
            _object(params),
            metrics[run_id],
            _object(tags),
        )
        for (
            run_id, experiment_id, name, status, start_time, end_time, user, source,
            git_commit, git_dirty, parent_run_id, lifecycle_stage, heartbeat_at, params, tags,
        ) in rows
    ]  # fmt: skip
