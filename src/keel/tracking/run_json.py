"""Keeps each run's JSON copies (runs.params_json, metrics_json, tags_json) equal to its rows.

A search page of 1,000 runs carries some 20,000 param and metric values; read from the
params, tags and latest_metrics tables they cost more than the rest of the search. So
every write to those tables also rewrites the run's JSON objects, in the same transaction
(``RunJson.write``), and searches read one row per run.

Formats: params and tags are JSON objects of strings. Metrics hold each latest value as
JSON number text that is Python's ``repr`` (shortest and exact, so any correct parser
returns the same double), and NaN, +inf and -inf as the strings "NaN", "Infinity" and
"-Infinity" — the REST API's form, so the server can splice the text into its response.

Concurrent writers to one run are serialised on the run's row: ``RunJson.lock`` reads the
copies with ``SELECT … FOR UPDATE`` on PostgreSQL (SQLite writers already queue on
``BEGIN IMMEDIATE``), so no read-modify-write loses another's keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, select, update

from keel.store import schema as t

__all__ = [
    "EMPTY",
    "RunJson",
    "dump_strings",
    "load_metrics",
    "metric_fragment",
    "metrics_text",
]

EMPTY = "{}"
# repr() of the values JSON has no number for, and the strings standing for them
_NON_FINITE_TEXT = {"nan": '"NaN"', "inf": '"Infinity"', "-inf": '"-Infinity"'}
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def dump_strings(values: Mapping[str, str]) -> str:
    """Return the JSON object text of a str -> str mapping (params or tags)."""
    return orjson.dumps(values).decode() if values else EMPTY


def metric_fragment(value_text: str) -> str:
    """Return a metric's JSON value for its ``repr`` text: the number, or "NaN"-like."""
    return _NON_FINITE_TEXT.get(value_text, value_text)


def metrics_text(fragments: Mapping[str, str]) -> str:
    """Return the JSON object text of key -> JSON value fragment (``metric_fragment``)."""
    if not fragments:
        return EMPTY
    key = orjson.dumps
    return "{" + ",".join(f"{key(k).decode()}:{v}" for k, v in fragments.items()) + "}"


def load_metrics(text: str | bytes) -> dict[str, float]:
    """Return the floats of a metrics JSON text ("NaN", "Infinity", "-Infinity" included)."""
    metrics = orjson.loads(text)
    if isinstance(text, bytes):
        text = text.decode()
    if '"NaN"' in text or 'Infinity"' in text:  # rare: only then is a value a string
        return {k: _NON_FINITE[v] if type(v) is str else v for k, v in metrics.items()}
    return metrics


def _fragments(text: str) -> dict[str, str]:
    # The stored object back as key -> fragment: a number parses to the same double and
    # repr gives its exact shortest text again; the strings stay as they were.
    return {
        k: (repr(v) if type(v) is float else orjson.dumps(v).decode())
        for k, v in orjson.loads(text).items()
    }


# FOR UPDATE is rendered on PostgreSQL only (SQLite has no row locks, and needs none).
_LOCK = (
    select(t.runs.c.params_json, t.runs.c.metrics_json, t.runs.c.tags_json)
    .where(t.runs.c.run_id == bindparam("run_id"))
    .with_for_update()
)
_LATEST = select(t.latest_metrics.c.key, t.latest_metrics.c.value_text).where(
    t.latest_metrics.c.run_id == bindparam("run_id"),
    t.latest_metrics.c.key.in_(bindparam("keys", expanding=True)),
)


class RunJson:
    """One run's JSON copies inside a write transaction: read, changed, written once."""

    def __init__(self, conn: Connection, run_id: str, row: Any) -> None:
        self.conn = conn
        self.run_id = run_id
        self.params_text, self.metrics_text, self.tags_text = row
        self._changed: dict[str, str] = {}

    @classmethod
    def lock(cls, conn: Connection, run_id: str) -> RunJson | None:
        """Return the run's copies, its row locked until commit; None if there is no run."""
        row = conn.execute(_LOCK, {"run_id": run_id}).first()
        return None if row is None else cls(conn, run_id, row)

    def add_params(self, params: Mapping[str, str]) -> None:
        """Record newly inserted params."""
        if params:
            merged = orjson.loads(self.params_text)
            merged.update(params)
            self.params_text = self._changed["params_json"] = dump_strings(merged)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Record tags just inserted or overwritten."""
        if tags:
            merged = orjson.loads(self.tags_text)
            merged.update(tags)
            self.tags_text = self._changed["tags_json"] = dump_strings(merged)

    def refresh_metrics(self, keys: Iterable[str]) -> None:
        """Copy the latest values of ``keys`` from latest_metrics (after its upsert).

        Read back rather than computed here, because the upsert keeps an older point
        when it has the higher step: the table decides, the copy follows it.
        """
        keys = list(keys)
        if not keys:
            return
        found = self.conn.execute(_LATEST, {"run_id": self.run_id, "keys": keys})
        fragments = _fragments(self.metrics_text)
        for key, value_text in found:
            fragments[key] = metric_fragment(value_text)
        self.metrics_text = self._changed["metrics_json"] = metrics_text(fragments)

    def write(self) -> None:
        """Write the changed copies in one UPDATE (nothing when nothing changed)."""
        if self._changed:
            self.conn.execute(
                update(t.runs).where(t.runs.c.run_id == self.run_id).values(**self._changed)
            )
            self._changed = {}
