"""The deployments tables (revision 0007), on the metadata database's one ``metadata``.

``deployments`` holds each endpoint's current state: its traffic plan (JSON, with the
revision it is at), its rollout (strategy, config and state as JSON) and the rollout's
step and start. ``deployment_history`` keeps every traffic change, and
``deployment_outcomes`` the A/B outcomes fed back, per rollout (the revision it began at).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from keel.store.schema import NAME, metadata

__all__ = ["DEPLOYMENT_TABLES", "deployment_history", "deployment_outcomes", "deployments"]

deployments = Table(
    "deployments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("environment", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("plan", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("strategy", String(32), nullable=True),
    # the rollout (config, status, summary) as JSON; NULL before the first rollout
    Column("rollout", Text, nullable=True),
    Column("step", Integer, nullable=True),
    Column("step_started_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    Index("ix_deployments_environment", "environment"),
)

deployment_history = Table(
    "deployment_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "deployment",
        String(128),
        ForeignKey("deployments.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("revision", Integer, nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("action", String(32), nullable=False),
    Column("plan", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Index("ix_deployment_history_deployment_revision", "deployment", "revision", unique=True),
)

deployment_outcomes = Table(
    "deployment_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "deployment",
        String(128),
        ForeignKey("deployments.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("rollout", Integer, nullable=False),
    Column("variant", String(300), nullable=False),
    Column("request_key", String(256), nullable=True),
    Column("value", Float(53), nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_deployment_outcomes_deployment_rollout_variant", "deployment", "rollout", "variant"),
)

DEPLOYMENT_TABLES = (deployments, deployment_history, deployment_outcomes)
