"""The scheduling tables (revision 0009), on the metadata database's one ``metadata``.

``leases`` lets several ``keel server`` processes on one database agree on who runs a
periodic job: a row per job name, held by one holder until ``expires_at`` (ms since the
epoch); see :mod:`keel.store.leases`. The pipeline schedules' tables join this module.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table

from keel.store.schema import NAME, metadata

__all__ = ["SCHEDULING_TABLES", "leases"]

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", NAME, nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

SCHEDULING_TABLES = (leases,)
