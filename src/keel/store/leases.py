"""Leases in the metadata database: one holder at a time per name, until it expires.

Several ``keel server`` processes may share one database; a periodic job (an alert
evaluation, a pipeline schedule) must run in one of them only. A lease is a row in
``leases``: whoever holds an unexpired row for a name runs that job, renewing it each
tick; when the holder dies the row expires after its ``ttl`` and another process takes it.

Both operations are single statements, atomic on SQLite and PostgreSQL alike: take or
renew is an ``UPDATE … WHERE holder = me OR expired``, and, when no row exists yet, an
``INSERT … ON CONFLICT DO NOTHING`` (two servers racing to create it: one row wins).
"""

from __future__ import annotations

import os
import socket
import uuid

from sqlalchemy import delete, or_, select, update

from keel.errors import InvalidInput
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_scheduling import leases

__all__ = ["Lease", "acquire_lease", "lease_holder", "new_holder_id", "release_lease"]

MAX_NAME = 200


def new_holder_id() -> str:
    """Return an id for this process that no other process on any host shares."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _check(name: str, ttl_s: float) -> None:
    if not name or len(name) > MAX_NAME:
        raise InvalidInput(f"a lease name must be 1-{MAX_NAME} characters, got {name!r}")
    if not ttl_s > 0:
        raise InvalidInput(f"a lease's ttl must be positive, got {ttl_s!r}")


def acquire_lease(db: Database, name: str, holder: str, ttl_s: float) -> bool:
    """Return True if ``holder`` now holds ``name`` for ``ttl_s`` seconds (taken or renewed).

    False means another holder has an unexpired lease on it.
    """
    _check(name, ttl_s)
    now = now_ms()
    expires = now + int(ttl_s * 1000)
    with db.write() as conn:
        taken = conn.execute(
            update(leases)
            .where(
                leases.c.name == name,
                or_(leases.c.holder == holder, leases.c.expires_at <= now),
            )
            .values(holder=holder, acquired_at=now, expires_at=expires)
        ).rowcount
        if taken:
            return True
        db.upsert(
            conn,
            leases,
            [{"name": name, "holder": holder, "acquired_at": now, "expires_at": expires}],
            keys=["name"],
            update=[],
        )
        row = conn.execute(select(leases.c.holder).where(leases.c.name == name)).first()
    return row is not None and row.holder == holder


def release_lease(db: Database, name: str, holder: str) -> None:
    """Give up ``name`` if ``holder`` holds it, so another process may take it at once."""
    with db.write() as conn:
        conn.execute(delete(leases).where(leases.c.name == name, leases.c.holder == holder))


class Lease:
    """What :func:`lease_holder` returns: the current holder of a name and until when."""

    __slots__ = ("expires_at", "holder")

    def __init__(self, holder: str, expires_at: int) -> None:
        self.holder = holder
        self.expires_at = expires_at


def lease_holder(db: Database, name: str) -> Lease | None:
    """Return who holds ``name`` now, or None if nobody holds an unexpired lease."""
    with db.read() as conn:
        row = conn.execute(
            select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)
        ).first()
    if row is None or row.expires_at <= now_ms():
        return None
    return Lease(row.holder, row.expires_at)
