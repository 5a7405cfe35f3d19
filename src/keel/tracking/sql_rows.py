"""Builds ``Run`` objects from rows of the runs table, with params, tags and metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from keel.store import schema as t
from keel.tracking.entities import Run, RunStatus

__all__ = ["hydrate_runs"]


def hydrate_runs(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    """Return Run objects for ``rows`` of the runs table, with params, tags, metrics."""
    if not rows:
        return []
    ids = [r.run_id for r in rows]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, float]] = {i: {} for i in ids}
    for chunk_start in range(0, len(ids), 900):
        chunk = ids[chunk_start : chunk_start + 900]
        for run_id, key, value in conn.execute(
            select(t.params.c.run_id, t.params.c.key, t.params.c.value).where(
                t.params.c.run_id.in_(chunk)
            )
        ):
            params[run_id][key] = value
        for run_id, key, value in conn.execute(
            select(t.tags.c.run_id, t.tags.c.key, t.tags.c.value).where(t.tags.c.run_id.in_(chunk))
        ):
            tags[run_id][key] = value
        lm = t.latest_metrics
        for run_id, key, value, is_nan in conn.execute(
            select(lm.c.run_id, lm.c.key, lm.c.value, lm.c.is_nan).where(lm.c.run_id.in_(chunk))
        ):
            metrics[run_id][key] = math.nan if is_nan else value
    return [
        Run(
            run_id=r.run_id,
            experiment_id=r.experiment_id,
            name=r.name,
            status=RunStatus(r.status),
            start_time=r.start_time,
            end_time=r.end_time,
            user=r.user,
            source=r.source,
            git_commit=r.git_commit,
            git_dirty=r.git_dirty,
            parent_run_id=r.parent_run_id,
            lifecycle_stage=r.lifecycle_stage,
            heartbeat_at=r.heartbeat_at,
            params=params[r.run_id],
            metrics=metrics[r.run_id],
            tags=tags[r.run_id],
        )
        for r in rows
    ]
