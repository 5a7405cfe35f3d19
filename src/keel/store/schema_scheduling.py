"""The scheduling tables (revision 0009), on the metadata database's one ``metadata``.

``leases`` lets several ``keel server`` processes on one database agree on who runs a
periodic job: a row per job name, held by one holder until ``expires_at`` (ms since the
epoch); see :mod:`keel.store.leases`.

``pipeline_schedules`` and ``pipeline_triggers`` hold what runs pipelines by time and by
event (``keel.pipelines.schedules``); ``pipeline_dispatches`` has one row per run they
started, unique per (source, name, event key): a schedule's key is its due time, so two
servers can never both start the run of one due time, and a version trigger's key is the
version, so each new version fires once.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from keel.store.schema import ID, NAME, metadata

__all__ = [
    "SCHEDULING_TABLES",
    "leases",
    "pipeline_dispatches",
    "pipeline_schedules",
    "pipeline_triggers",
]

leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", NAME, nullable=False),
    Column("acquired_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

pipeline_schedules = Table(
    "pipeline_schedules",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("pipeline", Text, nullable=False),
    Column("workdir", Text, nullable=True),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("params", Text, nullable=False),  # JSON object of name -> text
    Column("missed", String(16), nullable=False),
    Column("max_catchup", Integer, nullable=False),
    Column("executor", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_at", BigInteger, nullable=True),
    Column("last_run_at", BigInteger, nullable=True),
    Column("last_run_id", ID, nullable=True),
    Column("last_status", String(16), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    Index("ix_pipeline_schedules_enabled_next", "enabled", "next_run_at"),
)

pipeline_triggers = Table(
    "pipeline_triggers",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("pipeline", Text, nullable=False),
    Column("workdir", Text, nullable=True),
    Column("kind", String(16), nullable=False),
    Column("subject", NAME, nullable=False),
    Column("params", Text, nullable=False),
    Column("executor", String(16), nullable=False),
    Column("token_hash", String(64), nullable=True),  # BLAKE3 of a webhook's token
    Column("cursor", Text, nullable=True),  # the newest version seen (version triggers)
    Column("enabled", Boolean, nullable=False),
    Column("fired", Integer, nullable=False),
    Column("last_fired_at", BigInteger, nullable=True),
    Column("last_run_id", ID, nullable=True),
    Column("last_status", String(16), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", NAME, nullable=False),
    Index("ix_pipeline_triggers_kind_subject", "kind", "subject"),
)

pipeline_dispatches = Table(
    "pipeline_dispatches",
    metadata,
    Column("dispatch_id", ID, primary_key=True),
    Column("source", String(16), nullable=False),  # schedule | trigger
    Column("name", String(128), nullable=False),
    Column("event_key", String(300), nullable=False),
    Column("pipeline", Text, nullable=False),
    Column("workdir", Text, nullable=True),
    Column("params", Text, nullable=False),
    Column("executor", String(16), nullable=False),
    Column("lease", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("holder", NAME, nullable=False),
    Column("pid", Integer, nullable=True),
    Column("run_id", ID, nullable=True),
    Column("error", Text, nullable=True),
    Column("due_at", BigInteger, nullable=True),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger, nullable=True),
    Index("uq_pipeline_dispatches_event", "source", "name", "event_key", unique=True),
    Index("ix_pipeline_dispatches_status", "status"),
)

SCHEDULING_TABLES = (leases, pipeline_schedules, pipeline_triggers, pipeline_dispatches)
