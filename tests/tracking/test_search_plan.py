"""SQLite's plan for a search: which index of runs it scans, on new and upgraded databases.

A search that looks up each run's metrics (to filter or sort) should visit the runs in
run_id order (``ix_runs_experiment_id_lifecycle_stage_run_id_start_time``), so that its
lookups into latest_metrics, clustered on run_id, go in order; one sorted by start time
alone should read the start-time index, which gives it that order without a full sort.
Both indexes are equally good for the WHERE clause, and SQLite then takes the one created
last, so this checks the choice on databases built in either order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.store import schema
from keel.store.database import Database
from keel.store.migrate import ensure_schema, run_alembic_upgrade, upgrade
from keel.tracking.search import build_search

BY_RUN_ID = "ix_runs_experiment_id_lifecycle_stage_run_id_start_time"
BY_START = "ix_runs_experiment_id_lifecycle_stage_start_time_run_id"


@pytest.fixture(params=["created", "upgraded", "start_time_index_last"])
def sqlite_db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A SQLite database at the current schema, built one of three ways."""
    db = Database(f"sqlite:///{tmp_path / 'plan.db'}")
    if request.param == "upgraded":  # the run_id index is created last
        run_alembic_upgrade(db, "0005")
        upgrade(db)
        return db
    ensure_schema(db)
    last = BY_START if request.param == "start_time_index_last" else BY_RUN_ID
    (index,) = [ix for ix in schema.runs.indexes if ix.name == last]
    with db.write() as conn:  # recreated, so that it is the newest
        index.drop(conn)
        index.create(conn)
    return db


def _runs_index(db: Database, filter_text: str | None, order_by: list[str] | None) -> str:
    query, _ = build_search("sqlite", ["e" * 32], filter_text, order_by, 1000, None)
    compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    with db.read() as conn:
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
    db.dispose()
    found = [
        step for step in plan if step.startswith("SEARCH runs USING") and "autoindex" not in step
    ]
    assert len(found) == 1, plan
    return found[0]


@pytest.mark.parametrize(
    ("filter_text", "order_by"),
    [
        ("metrics.m0 > 0.5", ["metrics.m1 DESC"]),
        (None, ["metrics.m1"]),
        ("params.p = 'x'", ["tags.t DESC", "attributes.name"]),
    ],
)
def test_a_search_looking_up_every_run_reads_runs_in_run_id_order(
    sqlite_db: Database, filter_text: str | None, order_by: list[str]
) -> None:
    assert BY_RUN_ID in _runs_index(sqlite_db, filter_text, order_by)


@pytest.mark.parametrize("filter_text", [None, "metrics.m0 > 0.5"])
def test_a_search_in_start_time_order_reads_the_start_time_index(
    sqlite_db: Database, filter_text: str | None
) -> None:
    assert BY_START in _runs_index(sqlite_db, filter_text, None)
