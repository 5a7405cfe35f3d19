"""Hpo: the tables of ``keel.store.schema_hpo`` (studies and their Optuna journals).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hpo_studies",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("log_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_hpo_studies")),
    )
    op.create_table(
        "hpo_journal",
        sa.Column("study", sa.String(length=128), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("log", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study"],
            ["hpo_studies.name"],
            name=op.f("fk_hpo_journal_study_hpo_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("study", "number", name=op.f("pk_hpo_journal")),
    )
