"""The promotions tables (revision 0011): environments' promotions and their approvals.

``promotions`` keeps every promotion attempt (``keel.promote``): the version, the
environment and the alias it targets, its outcome (promoted, refused, dry-run or failed),
the alias move, each gate's result and the deployment rollout it started, as JSON.
``promotion_approvals`` keeps each approval of a version for an environment with its
approver and the approver's role when the server checked it (auth on).

Declared on the metadata database's one ``metadata`` (``keel.store.schema``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from keel.store.schema import ID, NAME, metadata

__all__ = ["PROMOTIONS_TABLES", "promotion_approvals", "promotions"]

promotions = Table(
    "promotions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the order of attempts
    Column("promotion_id", ID, nullable=False, unique=True),
    Column("model", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("environment", String(64), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("previous_version", Integer, nullable=True),
    # [{gate, passed, reason, details}] and the rollout started, as JSON
    Column("gates", Text, nullable=False),
    Column("deployment", String(128), nullable=True),
    Column("rollout", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_promotions_environment_at", "environment", "at"),
    Index("ix_promotions_model_version", "model", "version"),
)

promotion_approvals = Table(
    "promotion_approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", NAME, nullable=False),
    Column("version", Integer, nullable=False),
    Column("environment", String(64), nullable=False),
    Column("approver", NAME, nullable=False),
    # the approver's effective role when a server with auth on checked it; NULL otherwise
    Column("role", String(16), nullable=True),
    Column("comment", Text, nullable=True),
    Column("at", BigInteger, nullable=False),
    Index("ix_promotion_approvals_model_version_environment", "model", "version", "environment"),
)

PROMOTIONS_TABLES = (promotions, promotion_approvals)
