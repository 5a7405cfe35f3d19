"""Alerts: the tables of ``keel.store.schema_alerts``.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=250), nullable=False),
        sa.Column("op", sa.String(length=4), nullable=False),
        sa.Column("threshold", sa.Float(precision=53), nullable=False),
        sa.Column("window_s", sa.Float(precision=53), nullable=False),
        sa.Column("for_count", sa.Integer(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("cooldown_s", sa.Float(precision=53), nullable=False),
        sa.Column("repeat_s", sa.Float(precision=53), nullable=False),
        sa.Column("notifiers", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_rules")),
    )
    op.create_index("ix_alert_rules_deployment", "alert_rules", ["deployment"], unique=False)
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=250), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("breaches", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("fired_at", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("evaluated_at", sa.BigInteger(), nullable=False),
        sa.Column("notified_at", sa.BigInteger(), nullable=True),
        sa.Column("notifications", sa.Integer(), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=256), nullable=True),
        sa.Column("acknowledged_at", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_rule_state", "alerts", ["rule", "state"], unique=False)
    op.create_index(
        "uq_alerts_rule_open",
        "alerts",
        ["rule"],
        unique=True,
        sqlite_where=sa.text("state != 'resolved'"),
        postgresql_where=sa.text("state != 'resolved'"),
    )
    op.create_index("ix_alerts_state_started_at", "alerts", ["state", "started_at"], unique=False)
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("alert_id", sa.String(length=32), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(precision=53), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index("ix_alert_events_alert_id_id", "alert_events", ["alert_id", "id"], unique=False)
    op.create_index("ix_alert_events_rule_id", "alert_events", ["rule", "id"], unique=False)
