"""The audit log on SQLite or PostgreSQL: listing entries and verifying the chain."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import or_, select

from keel.governance.audit import (
    DEFAULT_LIMIT,
    AuditEntry,
    AuditProblem,
    AuditStore,
    VerifyResult,
)
from keel.governance.chain import GENESIS, digest, entry_hash
from keel.store import schema as t
from keel.store.database import Database

__all__ = ["SqlAuditStore", "verify"]

_BATCH = 2000


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _span(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first}–{last} are"


def _entry(row: Any) -> AuditEntry:
    try:
        change = json.loads(row.change)
    except ValueError:
        change = {"unreadable": row.change}
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        change=change if isinstance(change, dict) else {"value": change},
        change_digest=row.change_digest,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class SqlAuditStore(AuditStore):
    """The audit log in a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list_entries(
        self,
        *,
        object: str | None = None,
        since: int | None = None,
        action: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[AuditEntry]:
        a = t.audit_log
        query = select(a).order_by(a.c.seq.desc()).limit(limit)
        if object is not None:
            escaped = _escape_like(object)
            query = query.where(
                or_(
                    a.c.object_id == object,
                    a.c.object_id.like(f"{escaped}/%", escape="\\"),
                    a.c.object_id.like(f"{escaped}@%", escape="\\"),
                )
            )
        if since is not None:
            query = query.where(a.c.at >= since)
        if action is not None:
            if "." in action:
                query = query.where(a.c.action == action)
            else:
                query = query.where(a.c.action.like(f"{_escape_like(action)}.%", escape="\\"))
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [_entry(row) for row in reversed(rows)]

    def verify(self) -> VerifyResult:
        return verify(self.db)


def verify(db: Database) -> VerifyResult:
    """Return what re-walking ``db``'s audit chain in seq order found.

    Each entry's change digest and hash are recomputed from its row and the previous
    entry's hash. An entry whose digest or hash does not match was edited; a gap in seq
    means entries were deleted; a prev_hash that does not match the previous entry's hash
    (with the entry's own hash also wrong) means entries were reordered; a head that does
    not match the last entry means the tail was deleted (or the head was tampered with).
    """
    a = t.audit_log
    problems: list[AuditProblem] = []
    checked = 0
    expected, prev_hash, prev_flagged = 1, GENESIS, False
    last_label = "the start of the log"
    with db.read() as conn:
        head = conn.execute(select(t.audit_head.c.seq, t.audit_head.c.hash)).first()
        rows = conn.execute(select(a).order_by(a.c.seq).execution_options(yield_per=_BATCH))
        for row in rows:
            checked += 1
            label = f"{row.object_type} {row.object_id}"
            gap = row.seq != expected
            if gap:
                missing = _span(expected, row.seq - 1)
                problems.append(
                    AuditProblem(
                        expected,
                        "deleted",
                        label,
                        f"{missing} missing (deleted) between {last_label} and "
                        f"entry {row.seq} ({label})",
                    )
                )
            recomputed = entry_hash(
                row.prev_hash,
                row.seq,
                row.at,
                row.actor,
                row.action,
                row.object_type,
                row.object_id,
                row.change_digest,
            )
            linked = row.prev_hash == prev_hash or gap or prev_flagged
            flagged = True
            if digest(row.change) != row.change_digest:
                problems.append(
                    AuditProblem(
                        row.seq,
                        "edited",
                        label,
                        f"entry {row.seq} ({row.action} {label}) was edited: its change "
                        "does not match its digest",
                    )
                )
            elif recomputed != row.hash and not linked:
                problems.append(
                    AuditProblem(
                        row.seq,
                        "reordered",
                        label,
                        f"entry {row.seq} ({row.action} {label}) is out of place: it does "
                        f"not follow {last_label} (entries were reordered or moved)",
                    )
                )
            elif recomputed != row.hash:
                problems.append(
                    AuditProblem(
                        row.seq,
                        "edited",
                        label,
                        f"entry {row.seq} ({row.action} {label}) was edited: its fields "
                        "do not match its hash",
                    )
                )
            elif not linked:
                problems.append(
                    AuditProblem(
                        row.seq,
                        "reordered",
                        label,
                        f"entry {row.seq} ({row.action} {label}) does not chain onto "
                        f"{last_label}: entries were reordered or replaced",
                    )
                )
            else:
                flagged = False
            expected, prev_hash, prev_flagged = row.seq + 1, row.hash, flagged
            last_label = f"entry {row.seq} ({label})"
    last_seq = expected - 1
    if head is None:
        if checked:
            problems.append(
                AuditProblem(last_seq, "head", "audit_head", "the audit log's head row is missing")
            )
        return VerifyResult(checked, last_seq, problems)
    head_seq, head_hash = int(head[0]), str(head[1])
    if head_seq > last_seq:
        missing = _span(last_seq + 1, head_seq)
        problems.append(
            AuditProblem(
                last_seq + 1,
                "truncated",
                last_label,
                f"{missing} missing (deleted) after {last_label}: the log's tail was deleted",
            )
        )
    elif head_seq < last_seq or head_hash != prev_hash:
        problems.append(
            AuditProblem(
                last_seq,
                "head",
                last_label,
                f"the log's head (seq {head_seq}) does not match its last entry, {last_label}",
            )
        )
    return VerifyResult(checked, head_seq, problems)
