"""Appending to the audit log: canonical change JSON, digests, and the BLAKE3 hash chain.

Each entry's ``hash`` is BLAKE3 over the JSON array ``[prev_hash, seq, at, actor, action,
object_type, object_id, change_digest]`` (orjson, no spaces), and ``change_digest`` is BLAKE3
over the change's canonical JSON (sorted keys). The one-row ``audit_head`` table holds the
last ``seq`` and ``hash``; an appender reads it, chains its entries onto it, moves it and
inserts them. SQLite write transactions are serialised anyway (``BEGIN IMMEDIATE``); on
PostgreSQL the head is read ``FOR UPDATE``, so its row lock makes appenders take turns.

A store appends as the LAST statement of the write transaction that makes the change: the
entry commits or rolls back with it, and the head row's lock is held only until commit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson
from blake3 import blake3
from sqlalchemy import Connection

from keel.store.schema import AUDIT_GENESIS as GENESIS

__all__ = ["GENESIS", "Entry", "append", "canonical_change", "digest", "entry_hash"]

MAX_TEXT = 200  # characters kept of a long value
MAX_KEYS = 100  # keys kept of a large mapping


class Entry(NamedTuple):
    """One state change to record: what was done to which object, and what changed."""

    action: str
    object_type: str
    object_id: str
    change: Mapping[str, Any]


def _bounded(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return f"{value[:MAX_TEXT]}…[{len(value)} chars]"
        return value
    if isinstance(value, Mapping):
        items = list(value.items())
        if len(items) <= MAX_KEYS and all(
            type(k) is str and type(v) is str and len(k) <= MAX_TEXT and len(v) <= MAX_TEXT
            for k, v in items
        ):  # the common case (tags, params): nothing to bound, and no call per value
            return dict(items)
        out = {str(k)[:MAX_TEXT]: _bounded(v) for k, v in items[:MAX_KEYS]}
        if len(items) > MAX_KEYS:
            out["…"] = f"{len(items) - MAX_KEYS} more"
        return out
    if isinstance(value, (list, tuple)):
        kept = [_bounded(v) for v in value[:MAX_KEYS]]
        if len(value) > MAX_KEYS:
            kept.append(f"… {len(value) - MAX_KEYS} more")
        return kept
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return _bounded(str(value))


def canonical_change(change: Mapping[str, Any]) -> str:
    """Return the compact, key-sorted JSON of ``change``, long values and lists truncated."""
    return orjson.dumps(_bounded(change), option=orjson.OPT_SORT_KEYS).decode()


def digest(text: str) -> str:
    """Return the BLAKE3 hex digest of ``text`` (UTF-8)."""
    return blake3(text.encode()).hexdigest()


def entry_hash(
    prev_hash: str,
    seq: int,
    at: int,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    change_digest: str,
) -> str:
    """Return an entry's chained hash from its fields and the previous entry's hash."""
    encoded = orjson.dumps(
        [prev_hash, seq, at, actor, action, object_type, object_id, change_digest]
    )
    return blake3(encoded).hexdigest()


_SEED = (
    "INSERT INTO audit_head (id, seq, hash) SELECT 1,"
    " COALESCE((SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1), 0),"
    " COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), '" + GENESIS + "')"
    " ON CONFLICT (id) DO NOTHING"
)
_INSERT = (
    "INSERT INTO audit_log (seq, at, actor, action, object_type, object_id, change,"
    " change_digest, prev_hash, hash) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
# dialect -> (read the head, move the head, insert entries). On PostgreSQL the head is
# read FOR UPDATE: its row lock makes concurrent appenders take turns until commit.
_STATEMENTS = {
    "sqlite": (
        "SELECT seq, hash FROM audit_head WHERE id = 1",
        "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1",
        _INSERT.format(p="?"),
    ),
    "postgresql": (
        "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        "UPDATE audit_head SET seq = %s, hash = %s WHERE id = 1",
        _INSERT.format(p="%s"),
    ),
}


def append(conn: Connection, entries: Sequence[Entry], *, actor: str | None = None) -> list[int]:
    """Return the seqs given to ``entries``, appended and chained in ``conn``'s transaction.

    The actor defaults to ``keel.governance.identity.current_actor()``.
    """
    if not entries:
        return []
    if actor is None:
        from keel.governance.identity import current_actor

        actor = current_actor()
    head_sql, move_sql, insert_sql = _STATEMENTS[conn.dialect.name]
    head = conn.exec_driver_sql(head_sql).first()
    if head is None:  # the head row was never seeded (or was deleted): rebuild it
        conn.exec_driver_sql(_SEED)
        head = conn.exec_driver_sql(head_sql).one()
    seq, prev = int(head[0]), str(head[1])
    at = int(time.time() * 1000)
    rows = []
    for action, object_type, object_id, change in entries:
        seq += 1
        text = canonical_change(change)
        change_digest = digest(text)
        hashed = entry_hash(prev, seq, at, actor, action, object_type, object_id, change_digest)
        rows.append(
            (seq, at, actor, action, object_type, object_id, text, change_digest, prev, hashed)
        )
        prev = hashed
    conn.exec_driver_sql(move_sql, (seq, prev))
    conn.exec_driver_sql(insert_sql, rows if len(rows) > 1 else rows[0])
    return [row[0] for row in rows]
