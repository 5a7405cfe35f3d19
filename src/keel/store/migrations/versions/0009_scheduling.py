"""Scheduling: leases that let one of several servers on a database run a periodic job;
pipeline schedules, triggers and the runs they started (dispatches).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _owned() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=256), nullable=False),
    ]


def _last_run() -> list[sa.Column]:
    return [
        sa.Column("last_run_id", sa.String(length=32), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "pipeline_schedules",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("workdir", sa.Text(), nullable=True),
        sa.Column("cron", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("missed", sa.String(length=16), nullable=False),
        sa.Column("max_catchup", sa.Integer(), nullable=False),
        sa.Column("executor", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.BigInteger(), nullable=True),
        sa.Column("last_run_at", sa.BigInteger(), nullable=True),
        *_last_run(),
        *_owned(),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_schedules")),
    )
    op.create_index(
        "ix_pipeline_schedules_enabled_next",
        "pipeline_schedules",
        ["enabled", "next_run_at"],
        unique=False,
    )
    op.create_table(
        "pipeline_triggers",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("workdir", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("executor", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("fired", sa.Integer(), nullable=False),
        sa.Column("last_fired_at", sa.BigInteger(), nullable=True),
        *_last_run(),
        *_owned(),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_triggers")),
    )
    op.create_index(
        "ix_pipeline_triggers_kind_subject",
        "pipeline_triggers",
        ["kind", "subject"],
        unique=False,
    )
    op.create_table(
        "pipeline_dispatches",
        sa.Column("dispatch_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("event_key", sa.String(length=300), nullable=False),
        sa.Column("pipeline", sa.Text(), nullable=False),
        sa.Column("workdir", sa.Text(), nullable=True),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("executor", sa.String(length=16), nullable=False),
        sa.Column("lease", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("due_at", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("dispatch_id", name=op.f("pk_pipeline_dispatches")),
    )
    op.create_index(
        "uq_pipeline_dispatches_event",
        "pipeline_dispatches",
        ["source", "name", "event_key"],
        unique=True,
    )
    op.create_index(
        "ix_pipeline_dispatches_status", "pipeline_dispatches", ["status"], unique=False
    )
