"""The alerts tables (revision 0010): alert rules, alert states and their events.

Declared on the metadata database's one ``metadata`` (``keel.store.schema``).
``alert_rules`` holds each rule (notifiers and actions as JSON). ``alerts`` holds one row
per episode of a rule: pending, then firing, then resolved, with the figure that last
breached, who acknowledged it and the last error met while handling it. ``alert_events``
is the history of every episode and every rule-level error (no episode yet), oldest first.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from keel.store.schema import ID, KEY, NAME, metadata

__all__ = ["ALERTS_TABLES", "alert_events", "alert_rules", "alerts"]

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("name", String(128), primary_key=True),
    # no foreign key: a rule outlives a deleted deployment and reports it as an error
    Column("deployment", String(128), nullable=False),
    Column("metric", KEY, nullable=False),
    Column("op", String(4), nullable=False),
    Column("threshold", Float(53), nullable=False),
    Column("window_s", Float(53), nullable=False),
    Column("for_count", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("cooldown_s", Float(53), nullable=False),
    Column("repeat_s", Float(53), nullable=False),
    Column("notifiers", Text, nullable=False),
    Column("actions", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    Index("ix_alert_rules_deployment", "deployment"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", ID, primary_key=True),
    Column("rule", String(128), nullable=False),
    Column("deployment", String(128), nullable=False),
    Column("metric", KEY, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("value", Float(53), nullable=True),
    Column("breaches", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("fired_at", BigInteger, nullable=True),
    Column("resolved_at", BigInteger, nullable=True),
    Column("evaluated_at", BigInteger, nullable=False),
    Column("notified_at", BigInteger, nullable=True),
    Column("notifications", Integer, nullable=False),
    Column("acknowledged_by", NAME, nullable=True),
    Column("acknowledged_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_alerts_rule_state", "rule", "state"),
    # at most one open (pending or firing) alert per rule, even with two evaluators
    Index(
        "uq_alerts_rule_open",
        "rule",
        unique=True,
        sqlite_where=text("state != 'resolved'"),
        postgresql_where=text("state != 'resolved'"),
    ),
    Index("ix_alerts_state_started_at", "state", "started_at"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(128), nullable=False),
    Column("alert_id", ID, nullable=True),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", Float(53), nullable=True),
    Column("detail", Text, nullable=False),
    Index("ix_alert_events_alert_id_id", "alert_id", "id"),
    Index("ix_alert_events_rule_id", "rule", "id"),
)

ALERTS_TABLES: tuple[object, ...] = (alert_rules, alerts, alert_events)
