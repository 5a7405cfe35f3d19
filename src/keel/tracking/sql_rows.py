"""Selects runs with their params, tags and latest metrics, one row per run; builds ``Run``s.

A search page of 1,000 runs carries some 20,000 param and metric values. Each run's
params, tags and latest metrics are kept beside it as three JSON texts
(runs.params_json, metrics_json, tags_json; see ``keel.tracking.run_json``), so a page is
one row per run, and each text is parsed by orjson in one call. Metric values there are
Python's exact ``repr``, so they parse back to the same floats; NaN and ±inf are the
strings "NaN", "Infinity" and "-Infinity".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ColumnElement, String, Text, case, cast, func, literal

from keel.store import schema as t
from keel.tracking.entities import Run, RunStatus
from keel.tracking.run_json import load_metrics

__all__ = ["hydrate", "run_columns", "run_json_column"]

_STATUS = {status.value: status for status in RunStatus}
_RUN_FIELDS = (
    "run_id", "experiment_id", "name", "status", "start_time", "end_time", "user", "source",
    "git_commit", "git_dirty", "parent_run_id", "lifecycle_stage", "heartbeat_at",
)  # fmt: skip


def run_columns(dialect: str) -> list[ColumnElement[Any]]:
    """Return the runs columns plus each run's params, tags and metrics as JSON texts."""
    r = t.runs
    return [*(r.c[name] for name in _RUN_FIELDS), r.c.params_json, r.c.tags_json, r.c.metrics_json]


def run_json_column(dialect: str) -> ColumnElement[str]:
    """Return each run as the JSON text of ``Run.to_dict()`` (built by the database).

    A search through the server sends these texts as they are: no ``Run`` is built, and
    no JSON decoded and encoded again. The stored params, metrics and tags objects are
    already in the REST API's form, so they are spliced in as text.
    """
    r = t.runs
    fields: list[Any] = []
    for name in _RUN_FIELDS:
        column: Any = r.c[name]
        if name == "git_dirty" and dialect != "postgresql":  # SQLite stores 0 / 1
            column = func.json(
                case((column.is_(None), "null"), (column == 1, "true"), else_="false")
            )
        fields += [literal(name, String), column]
    if dialect == "postgresql":
        rest = cast(func.json_build_object(*fields), Text)
    else:
        rest = func.json_object(*fields)
    return (
        literal('{"params":')
        .concat(r.c.params_json)
        .concat(',"metrics":')
        .concat(r.c.metrics_json)
        .concat(',"tags":')
        .concat(r.c.tags_json)
        .concat(",")
        .concat(func.substr(rest, 2))
        .label("run_json")
    )


_loads = orjson.loads


def hydrate(rows: Sequence[Any]) -> list[Run]:
    """Return ``Run``s for rows selected with ``run_columns``."""
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
            _loads(params),
            load_metrics(metrics),
            _loads(tags),
        )
        for (
            run_id, experiment_id, name, status, start_time, end_time, user, source,
            git_commit, git_dirty, parent_run_id, lifecycle_stage, heartbeat_at, params, tags,
            metrics,
        ) in rows
    ]  # fmt: skip
