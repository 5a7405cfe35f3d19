"""The audit log: who changed what, when — append-only and hash-chained.

Every state change a store makes (create, update, delete of experiments, runs, params,
tags, models, versions, aliases; later users, tokens, roles, settings, deployments and
alerts) appends one entry in the SAME transaction as the change: actor, time, action,
object, the change itself (compact JSON, long values truncated) and its BLAKE3 digest.
Each entry's hash covers the previous entry's hash, so ``verify_audit_log()`` finds any
edited, deleted or reordered entry and names it (see ``keel.governance.chain``).

Metric points and heartbeats are data, not state changes: they are NOT audited, so
metric logging pays nothing for the log.

Reading the log: ``audit_log(object=…, since=…, action=…, limit=…)``; checking it:
``verify_audit_log()``. Both read the metadata database of the current tracking URI.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.stores import Stores

__all__ = [
    "AuditEntry",
    "AuditProblem",
    "AuditStore",
    "VerifyResult",
    "audit_log",
    "audit_store",
    "parse_since",
    "verify_audit_log",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class AuditEntry:
    """One recorded state change."""

    seq: int
    at: int
    actor: str
    action: str
    object_type: str
    object_id: str
    change: dict[str, Any]
    change_digest: str
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class AuditProblem:
    """One break in the chain: the entry's seq, what kind of break, and which object."""

    seq: int
    kind: str  # "edited", "deleted", "reordered", "truncated" or "head"
    object: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as plain JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify_audit_log`` found: ok when the whole chain checks out."""

    checked: int
    head_seq: int
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Return the result as plain JSON-ready data."""
        return {
            "ok": self.ok,
            "checked": self.checked,
            "head_seq": self.head_seq,
            "problems": [p.to_dict() for p in self.problems],
        }


class AuditStore(ABC):
    """Reads and verifies an audit log (appending is done by the stores that change state)."""

    @abstractmethod
    def list_entries(
        self,
        *,
        object: str | None = None,
        since: int | None = None,
        action: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[AuditEntry]:
        """Return the latest ``limit`` matching entries, oldest first."""

    @abstractmethod
    def verify(self) -> VerifyResult:
        """Return the result of re-walking the whole chain."""


_RELATIVE = re.compile(r"(\d+)\s*(s|m|min|h|d|w)", re.IGNORECASE)
_UNIT_MS = {"s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNIT_MS["w"] = 7 * _UNIT_MS["d"]


def parse_since(value: int | float | datetime | date | str, *, now: int | None = None) -> int:
    """Return ``value`` as epoch milliseconds: ms, a datetime or date, "1h"/"30m"/"7d",
    or an ISO date or time (naive ones are local time)."""
    if isinstance(value, bool):
        raise InvalidInput(f"not a time: {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day).timestamp() * 1000)
    text = str(value).strip()
    match = _RELATIVE.fullmatch(text)
    if match:
        current = int(time.time() * 1000) if now is None else now
        return current - int(match.group(1)) * _UNIT_MS[match.group(2).lower()]
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise InvalidInput(
            f"not a time: {text!r}; use a duration back from now (30m, 1h, 7d, 2w), "
            "a date (2026-11-25) or an ISO time (2026-11-25T14:00:00)"
        ) from None


def audit_store(stores: Stores | None = None) -> AuditStore:
    """Return the audit store of ``stores`` (default: the current tracking URI's)."""
    if stores is None:
        from keel.stores import current_stores

        stores = current_stores()
    db = getattr(stores.tracking, "db", None)
    if db is None:
        raise InvalidInput(
            f"the audit log is read from the metadata database; {stores.tracking_uri} is a "
            "Keel server, and reading its audit log through it is not supported yet — run "
            "`keel audit` where KEEL_TRACKING_URI names the database"
        )
    from keel.governance.sql_audit import SqlAuditStore

    return SqlAuditStore(db)


def audit_log(
    object: str | None = None,
    since: int | float | datetime | date | str | None = None,
    action: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[AuditEntry]:
    """Return the latest ``limit`` audit entries, oldest first, filtered.

    ``object`` is an object id (a run id, an experiment id, "model", "model/3",
    "model@alias"); a model name also matches its versions and aliases. ``since`` is epoch
    ms, a datetime, "1h"/"7d" or an ISO date or time. ``action`` is e.g. "run.create";
    "run" matches every run action.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    for name, value in (("object", object), ("action", action)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 512):
            raise InvalidInput(f"{name} must be a non-empty string, not {value!r}")
    since_ms = None if since is None else parse_since(since)
    return audit_store().list_entries(object=object, since=since_ms, action=action, limit=limit)


def verify_audit_log() -> VerifyResult:
    """Return the result of re-walking the current store's whole audit chain."""
    return audit_store().verify()
