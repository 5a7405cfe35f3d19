"""Selects runs with their params, tags and latest metrics in one query; builds ``Run``s.

A search page of 1,000 runs carries some 20,000 param and metric values, and fetching
them as rows costs more in Python than the query itself. So each run's params, tags and
latest metrics come back with it as three JSON objects aggregated by the database
(``json_group_object`` on SQLite, ``json_object_agg`` on PostgreSQL). Metric values
travel as ``latest_metrics.value_text`` — Python's exact ``repr`` written beside each
value — because SQLite's own float-to-text conversion does not round-trip every double;
embedded as JSON numbers, they parse straight back to the same floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import JSON, ColumnElement, String, Text, case, cast, func, literal, select

from keel.store import schema as t
from keel.tracking.entities import Run, RunStatus

__all__ = ["hydrate", "run_columns", "run_json_column"]

_STATUS = {status.value: status for status in RunStatus}
_NON_FINITE = ("nan", "inf", "-inf")
_RUN_FIELDS = (
    "run_id", "experiment_id", "name", "status", "start_time", "end_time", "user", "source",
    "git_commit", "git_dirty", "parent_run_id", "lifecycle_stage", "heartbeat_at",
)  # fmt: skip


def _json_object(dialect: str, table: Any, value: Any) -> ColumnElement[Any]:
    aggregate = func.json_object_agg if dialect == "postgresql" else func.json_group_object
    return (
        select(aggregate(table.c.key, value))
        .where(table.c.run_id == t.runs.c.run_id)
        .scalar_subquery()
    )


def _metric_value(dialect: str) -> ColumnElement[Any]:
    # Finite values become JSON numbers whose text is Python's repr, kept verbatim (so
    # orjson returns the exact float); "nan", "inf" and "-inf" stay JSON strings.
    text = t.latest_metrics.c.value_text
    non_finite = text.in_(_NON_FINITE)
    if dialect == "postgresql":
        return case((non_finite, func.to_json(text)), else_=cast(text, JSON))
    return case((non_finite, text), else_=func.json(text))


def run_columns(dialect: str) -> list[ColumnElement[Any]]:
    """Return the runs columns plus each run's params, tags and metrics as JSON objects."""
    p, tg, lm = t.params, t.tags, t.latest_metrics
    return [
        *(t.runs.c[name] for name in _RUN_FIELDS),
        _json_object(dialect, p, p.c.value).label("params_json"),
        _json_object(dialect, tg, tg.c.value).label("tags_json"),
        _json_object(dialect, lm, _metric_value(dialect)).label("metrics_json"),
    ]


def _rest_metrics(dialect: str) -> ColumnElement[Any]:
    # A run's latest metrics as the REST API's JSON text: finite values are their exact
    # repr, NaN and ±inf the strings "NaN", "Infinity" and "-Infinity" (``float_to_json``).
    lm = t.latest_metrics
    text = lm.c.value_text
    where = lm.c.run_id == t.runs.c.run_id
    if dialect == "postgresql":
        value = case(
            (text == "nan", cast(literal('"NaN"'), JSON)),
            (text == "inf", cast(literal('"Infinity"'), JSON)),
            (text == "-inf", cast(literal('"-Infinity"'), JSON)),
            else_=cast(text, JSON),
        )
        found = select(func.json_object_agg(lm.c.key, value)).where(where).scalar_subquery()
        return func.coalesce(found, cast(literal("{}"), JSON))
    # Concatenated, not json_group_object: that would parse every value with json() first.
    value = case(
        (text == "nan", literal('"NaN"')),
        (text == "inf", literal('"Infinity"')),
        (text == "-inf", literal('"-Infinity"')),
        else_=text,
    )
    pair = func.json_quote(lm.c.key).concat(":").concat(value)
    found = select(func.group_concat(pair, ",")).where(where).scalar_subquery()
    return literal("{").concat(func.coalesce(found, "")).concat("}")


def run_json_column(dialect: str) -> ColumnElement[str]:
    """Return each run as the JSON text of ``Run.to_dict()`` (built by the database).

    A search through the server sends these texts as they are: no ``Run`` is built, and
    no JSON decoded and encoded again.
    """
    r, p, tg = t.runs, t.params, t.tags
    fields: list[Any] = []
    for name in _RUN_FIELDS:
        column: Any = r.c[name]
        if name == "git_dirty" and dialect != "postgresql":  # SQLite stores 0 / 1
            column = func.json(
                case((column.is_(None), "null"), (column == 1, "true"), else_="false")
            )
        fields += [literal(name, String), column]
    if dialect == "postgresql":
        params = func.coalesce(_json_object(dialect, p, p.c.value), cast(literal("{}"), JSON))
        tags = func.coalesce(_json_object(dialect, tg, tg.c.value), cast(literal("{}"), JSON))
        obj = func.json_build_object(
            *fields, "params", params, "metrics", _rest_metrics(dialect), "tags", tags
        )
        return cast(obj, Text).label("run_json")
    # The three objects are spliced in as text: passed to json_object from a subquery,
    # SQLite would take them for strings.
    return (
        literal('{"params":')
        .concat(_json_object(dialect, p, p.c.value))
        .concat(',"metrics":')
        .concat(_rest_metrics(dialect))
        .concat(',"tags":')
        .concat(_json_object(dialect, tg, tg.c.value))
        .concat(",")
        .concat(func.substr(func.json_object(*fields), 2))
        .label("run_json")
    )


def _object(value: Any) -> dict[str, Any]:
    if value is None:  # PostgreSQL aggregates nothing to NULL
        return {}
    if isinstance(value, str | bytes):
        return orjson.loads(value)
    return value  # psycopg has already decoded json


def _metrics(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, str | bytes):
        metrics = orjson.loads(value)
        text = value if isinstance(value, str) else value.decode()
        if 'nan"' not in text and 'inf"' not in text:
            return metrics  # every value already a float: the common case, no Python loop
    else:
        metrics = value  # psycopg has already decoded json
    return {key: float(number) for key, number in metrics.items()}


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
            _object(params),
            _metrics(metrics),
            _object(tags),
        )
        for (
            run_id, experiment_id, name, status, start_time, end_time, user, source,
            git_commit, git_dirty, parent_run_id, lifecycle_stage, heartbeat_at, params, tags,
            metrics,
        ) in rows
    ]  # fmt: skip
