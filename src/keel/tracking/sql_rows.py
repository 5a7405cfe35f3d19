"""Builds ``Run`` objects from rows of the runs table, with params, tags and metrics.

This is the hot half of a search: a page of 1,000 runs carries some 20,000 param and
metric rows. They are fetched with plain DB-API cursors (one query per table, by run id),
skipping SQLAlchemy's per-row result processing, which costs more than the query itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection

from keel.tracking.entities import Run, RunStatus

__all__ = ["hydrate_runs"]

_STATUS = {status.value: status for status in RunStatus}
_SQLITE_CHUNK = 900  # stays under SQLite's host-parameter limit on old builds

_QUERIES = {
    "params": "SELECT run_id, key, value FROM params WHERE run_id",
    "tags": "SELECT run_id, key, value FROM tags WHERE run_id",
    "latest_metrics": "SELECT run_id, key, value, is_nan FROM latest_metrics WHERE run_id",
}


def _fetch(conn: Connection, table: str, ids: list[str]) -> Iterator[tuple[Any, ...]]:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(f"{_QUERIES[table]} = ANY(%s)", (ids,))
            yield from cursor.fetchall()
            return
        for start in range(0, len(ids), _SQLITE_CHUNK):
            chunk = ids[start : start + _SQLITE_CHUNK]
            marks = ",".join("?" * len(chunk))
            cursor.execute(f"{_QUERIES[table]} IN ({marks})", chunk)
            yield from cursor.fetchall()
    finally:
        cursor.close()


def hydrate_runs(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    """Return Run objects for ``rows`` of the runs table, with params, tags, metrics."""
    if not rows:
        return []
    ids = [r.run_id for r in rows]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
    for run_id, key, value in _fetch(conn, "params", ids):
        params[run_id][key] = value
    for run_id, key, value in _fetch(conn, "tags", ids):
        tags[run_id][key] = value
    nan = math.nan
    for run_id, key, value, is_nan in _fetch(conn, "latest_metrics", ids):
        metrics[run_id][key] = nan if is_nan else value
    return [
        Run(
            r.run_id,
            r.experiment_id,
            r.name,
            _STATUS[r.status],
            r.start_time,
            r.end_time,
            r.user,
            r.source,
            r.git_commit,
            None if r.git_dirty is None else bool(r.git_dirty),
            r.parent_run_id,
            r.lifecycle_stage,
            r.heartbeat_at,
            params[r.run_id],
            metrics[r.run_id],
            tags[r.run_id],
        )
        for r in rows
    ]
