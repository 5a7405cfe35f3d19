"""The metadata database's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Times are integer milliseconds since the epoch. Ids are 32-character hex strings. The
Alembic revisions under ``migrations/versions`` build exactly these tables; a test compares
the two so they cannot drift apart.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    text,
)

__all__ = ["HEAD_REVISION", "REVISIONS", "metadata"]

# Oldest first; the last one is what this Keel writes. Kept here (not read from Alembic)
# so that opening a store never imports Alembic.
REVISIONS: tuple[str, ...] = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0005",
    "0006",
    "0007",
    "0008",
    "0009",
    "0010",
    "0011",
    "0012",
    "0013",
)
HEAD_REVISION = REVISIONS[-1]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

KEY = String(250)
ID = String(32)
NAME = String(256)
DIGEST = String(64)

keel_meta = Table(
    "keel_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- revision 0001: experiment tracking -------------------------------------------------

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("artifact_location", Text, nullable=True),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

experiment_tags = Table(
    "experiment_tags",
    metadata,
    Column(
        "experiment_id",
        ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", ID, primary_key=True),
    Column(
        "experiment_id",
        ID,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=True),
    Column("user", NAME, nullable=False),
    Column("source", Text, nullable=True),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("parent_run_id", ID, ForeignKey("runs.run_id", ondelete="SET NULL"), nullable=True),
    Column("lifecycle_stage", String(16), nullable=False, default="active"),
    Column("heartbeat_at", BigInteger, nullable=True),
    Column("writer", NAME, nullable=True),
    # revision 0006: copies of the run's params, tags and latest metrics as JSON objects,
    # rewritten in the same transaction as every write to those tables (see
    # keel.tracking.run_json), so a search reads one row per run. Metric values are their
    # exact repr, NaN and ±inf the strings "NaN", "Infinity" and "-Infinity".
    Column("params_json", Text, nullable=False, server_default="{}"),
    Column("metrics_json", Text, nullable=False, server_default="{}"),
    Column("tags_json", Text, nullable=False, server_default="{}"),
    Index("ix_runs_experiment_id_start_time", "experiment_id", "start_time"),
    # revision 0005: a search reads its experiments' active run ids from the index alone
    Index(
        "ix_runs_experiment_id_lifecycle_stage_start_time_run_id",
        "experiment_id",
        "lifecycle_stage",
        "start_time",
        "run_id",
    ),
    # revision 0008: the same runs in run_id order. A search that looks up each run's
    # metrics, params or tags (to filter or sort) visits them in the order their rows are
    # stored (clustered on run_id), not at random: ~20 % less CPU over 10,000 runs.
    Index(
        "ix_runs_experiment_id_lifecycle_stage_run_id_start_time",
        "experiment_id",
        "lifecycle_stage",
        "run_id",
        "start_time",
    ),
    Index("ix_runs_status_heartbeat_at", "status", "heartbeat_at"),
    Index("ix_runs_parent_run_id", "parent_run_id"),
)

params = Table(
    "params",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

tags = Table(
    "tags",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    sqlite_with_rowid=False,
)

# The full history of every metric. NaN is kept as is_nan=True with value 0, because
# SQLite turns a bound NaN into NULL; ±inf round-trips natively on both databases.
# The primary key is the history's order; on SQLite the table is clustered on it
# (WITHOUT ROWID), which halves the cost of bulk inserts against a table plus an index.
# A point logged twice with the same step, timestamp and value is stored once.
metrics = Table(
    "metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, primary_key=True),
    Column("value", Float(53), primary_key=True),
    Column("is_nan", Boolean, primary_key=True),
    sqlite_with_rowid=False,
)

# One row per (run, key): the value at the highest step, then the latest timestamp.
# params, tags and latest_metrics are clustered on (run_id, key) on SQLite (WITHOUT ROWID):
# a search reads all of a page's rows by run id, and then gets them in one range scan.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Float(53), nullable=False),
    # repr(value), written by Python: exact and shortest. Searches aggregate it into one
    # JSON object per run; SQLite's own float-to-text conversion is not exact.
    Column("value_text", String(32), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("is_nan", Boolean, nullable=False),
    Index("ix_latest_metrics_key_value", "key", "value"),
    sqlite_with_rowid=False,
)

datasets = Table(
    "datasets",
    metadata,
    Column("dataset_id", ID, primary_key=True),
    Column("name", NAME, nullable=False),
    Column("digest", DIGEST, nullable=False),
    Column("source", Text, nullable=True),
    Column("schema", Text, nullable=True),
    Column("profile", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("uq_datasets_name_digest", "name", "digest", unique=True),
    # Revision 0013: the datasets of a digest, for searches by datasets.digest.
    Index("ix_datasets_digest", "digest"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column(
        "dataset_id",
        ID,
        ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("context", String(64), primary_key=True),
    # Revision 0013: the runs that took a dataset (searches by datasets.x, lineage down).
    Index("ix_run_inputs_dataset_id_run_id", "dataset_id", "run_id"),
)

# A run's artifacts by logical path; the bytes live once per digest in the artifact store.
run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", DIGEST, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# --- revision 0002: model registry ------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_version", Integer, nullable=False, default=0),
)

registered_model_tags = Table(
    "registered_model_tags",
    metadata,
    Column(
        "name",
        NAME,
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "name",
        NAME,
        ForeignKey("registered_models.name", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("run_id", ID, ForeignKey("runs.run_id", ondelete="SET NULL"), nullable=True),
    Column("source", Text, nullable=False),
    Column("artifact_digest", DIGEST, nullable=False),
    Column("flavor", String(64), nullable=False),
    Column("signature", Text, nullable=True),
    Column("input_example", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("metrics", Text, nullable=True),
    Column("model_card", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    Index("ix_model_versions_run_id", "run_id"),
)

model_version_tags = Table(
    "model_version_tags",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", KEY, primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", NAME, primary_key=True),
    Column("alias", NAME, primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["model_versions.name", "model_versions.version"],
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
)

model_alias_history = Table(
    "model_alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", NAME, nullable=False),
    Column("alias", NAME, nullable=False),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("changed_at", BigInteger, nullable=False),
    Column("changed_by", NAME, nullable=False),
    Index("ix_model_alias_history_name_alias", "name", "alias"),
)

# --- revision 0003: governance ---------------------------------------------------------

# The append-only, hash-chained audit log of every state change (keel.governance.chain):
# rows are only ever inserted, in seq order, each hash covering the previous one.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("actor", NAME, nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(32), nullable=False),
    Column("object_id", String(512), nullable=False),
    Column("change", Text, nullable=False),
    Column("change_digest", DIGEST, nullable=False),
    Column("prev_hash", DIGEST, nullable=False),
    Column("hash", DIGEST, nullable=False),
    Index("ix_audit_log_object_id", "object_id"),
    Index("ix_audit_log_at", "at"),
)

# One row (id 1): the last seq and hash. Moving it in place hands out the next seq, gives
# the previous hash without reading the log, and serialises appenders on its row lock.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", DIGEST, nullable=False),
)

AUDIT_GENESIS = "0" * 64
# The same row the 0003 migration inserts, for databases built by create_all.
event.listen(
    audit_head,
    "after_create",
    lambda target, connection, **kw: connection.execute(
        text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": AUDIT_GENESIS}
    ),
)

# --- revision 0004: identity and roles --------------------------------------------------

# A user's ``role`` is their global role (viewer, editor or admin); ``role_bindings`` raise
# it on one experiment (by id) or one registered model (by name).
users = Table(
    "users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column(
        "user_name",
        String(64),
        ForeignKey("users.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("object_type", String(16), primary_key=True),
    Column("object_id", NAME, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Only a token's SHA-256 is stored; ``token_id`` is the short, non-secret id inside it.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("user_name", String(64), ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    Column("token_hash", DIGEST, nullable=False),
    Column("label", String(200), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Index("ix_api_tokens_user_name", "user_name"),
)

TRACKING_TABLES = (
    keel_meta,
    experiments,
    experiment_tags,
    runs,
    params,
    tags,
    metrics,
    latest_metrics,
    datasets,
    run_inputs,
    run_artifacts,
)
REGISTRY_TABLES = (
    registered_models,
    registered_model_tags,
    model_versions,
    model_version_tags,
    model_aliases,
    model_alias_history,
)
GOVERNANCE_TABLES = (audit_log, audit_head, users, role_bindings, api_tokens)

from keel.store import schema_alerts as _alerts  # noqa: E402, F401 (0010)
from keel.store import schema_deployments as _deployments  # noqa: E402, F401 (0007 tables)
from keel.store import schema_hpo as _hpo  # noqa: E402, F401 (0012)
from keel.store import schema_promotions as _promotions  # noqa: E402, F401 (0011)
from keel.store import schema_scheduling as _scheduling  # noqa: E402, F401 (0009)
