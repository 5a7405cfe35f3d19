"""Promotions: the tables of ``keel.store.schema_promotions``.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("promotion_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("gates", sa.Text(), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=True),
        sa.Column("rollout", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("promotion_id", name=op.f("uq_promotions_promotion_id")),
    )
    op.create_index(
        "ix_promotions_environment_at", "promotions", ["environment", "at"], unique=False
    )
    op.create_index("ix_promotions_model_version", "promotions", ["model", "version"], unique=False)
    op.create_table(
        "promotion_approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=256), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("environment", sa.String(length=64), nullable=False),
        sa.Column("approver", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_approvals")),
    )
    op.create_index(
        "ix_promotion_approvals_model_version_environment",
        "promotion_approvals",
        ["model", "version", "environment"],
        unique=False,
    )
