"""Run JSON copies: runs.params_json, metrics_json and tags_json, backfilled from the tables.

Each run's params, tags and latest metrics, as one JSON object each on its runs row, so a
search reads one row per run instead of aggregating some 20 rows per run. Metric values
are written as ``latest_metrics.value_text`` (Python's exact repr), NaN and ±inf as the
strings "NaN", "Infinity" and "-Infinity". The store rewrites them in the same transaction
as every later write to params, tags and latest_metrics.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COLUMNS = ("params_json", "metrics_json", "tags_json")

# A metric's JSON value: value_text as it is (an exact JSON number), or a string for the
# three texts JSON has no number for.
_METRIC_VALUE = (
    "CASE value_text WHEN 'nan' THEN '\"NaN\"' WHEN 'inf' THEN '\"Infinity\"'"
    " WHEN '-inf' THEN '\"-Infinity\"' ELSE value_text END"
)

_SQLITE = (
    "UPDATE runs SET"
    " params_json = COALESCE((SELECT json_group_object(key, value) FROM params"
    " WHERE params.run_id = runs.run_id), '{}'),"
    " tags_json = COALESCE((SELECT json_group_object(key, value) FROM tags"
    " WHERE tags.run_id = runs.run_id), '{}'),"
    " metrics_json = '{' || COALESCE((SELECT group_concat(json_quote(key) || ':' || "
    + _METRIC_VALUE
    + ", ',') FROM latest_metrics WHERE latest_metrics.run_id = runs.run_id), '') || '}'"
)

_POSTGRESQL = (
    "UPDATE runs SET"
    " params_json = COALESCE((SELECT json_object_agg(key, value)::text FROM params"
    " WHERE params.run_id = runs.run_id), '{}'),"
    " tags_json = COALESCE((SELECT json_object_agg(key, value)::text FROM tags"
    " WHERE tags.run_id = runs.run_id), '{}'),"
    " metrics_json = '{' || COALESCE((SELECT string_agg(to_json(key)::text || ':' || "
    + _METRIC_VALUE
    + ", ',') FROM latest_metrics WHERE latest_metrics.run_id = runs.run_id), '') || '}'"
)


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column(
            "runs", sa.Column(name, sa.Text(), nullable=False, server_default=sa.text("'{}'"))
        )
    bind = op.get_bind()
    op.execute(_POSTGRESQL if bind.dialect.name == "postgresql" else _SQLITE)
