"""SQLite's plan for a search: which index it scans, on new and upgraded databases.

A search that looks up each run's metrics (to filter or sort) should visit the runs in
run_id order (``ix_runs_experiment_id_lifecycle_stage_run_id_start_time``), so that its
lookups into latest_metrics, clustered on run_id, go in order; one sorted by start time
alone should read the start-time index, which gives it that order without a full sort.
Both indexes are equally good for the WHERE clause, and SQLite then takes the one created
last, so this checks the choice on databases built in either order.

A search ordered by a metric first may instead walk latest_metrics' (key, value) index and
stop once its page is full (``keel.tracking.sql_search_metric``): it should drive the
join from that index and sort only ties, and be chosen only when it is expected to pay.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.store import schema
from keel.store.database import Database
from keel.store.migrate import ensure_schema, run_alembic_upgrade, upgrade
from keel.tracking.search import build_search
from keel.tracking.sql_search_metric import metric_order_plan
from keel.tracking.sql_store import SqlTrackingStore

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


# -- a search ordered by a metric first (keel.tracking.sql_search_metric) -------------------

BY_KEY_VALUE = "ix_latest_metrics_key_value"


def _plan(db: Database, query: Any) -> list[str]:
    compiled = query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    with db.read() as conn:
        text = str(compiled).replace(":page_limit", "1001").replace(":page_offset", "0")
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {text}")]
    db.dispose()
    return plan


@pytest.mark.parametrize(
    ("filter_text", "order_by"),
    [
        ("metrics.m0 > 0.5", ("metrics.m1 DESC",)),
        (None, ("metrics.m1",)),
        ("params.p = 'x'", ("metrics.m1 DESC", "attributes.name")),
    ],
)
def test_the_metric_walk_reads_the_key_value_index_and_sorts_only_ties(
    sqlite_db: Database, filter_text: str | None, order_by: tuple[str, ...]
) -> None:
    plan = metric_order_plan("sqlite", ("e" * 32,), filter_text, order_by, True)
    assert plan is not None
    for query, page_sorts in ((plan.first_head, 0), (plan.head, 1)):
        steps = _plan(sqlite_db, query)
        # The walk drives the join from the index, in the page's order, reading is_nan
        # only for a value of 0 (a NaN is stored as 0) ...
        walk = [s for s in steps if s.startswith("SEARCH order_metric")]
        assert walk == [f"SEARCH order_metric USING COVERING INDEX {BY_KEY_VALUE} (key=?)"]
        assert steps.index(walk[0]) < min(i for i, s in enumerate(steps) if "SEARCH runs" in s)
        # ... so it sorts only runs tied on the metric, and can stop when the page is full
        # (past an offset, the page's rows are then joined to their columns and sorted).
        assert "USE TEMP B-TREE FOR RIGHT PART OF ORDER BY" in steps, steps
        assert steps.count("USE TEMP B-TREE FOR ORDER BY") == page_sorts, steps


def test_the_runs_without_the_metric_are_read_in_start_time_order(sqlite_db: Database) -> None:
    plan = metric_order_plan("sqlite", ("e" * 32,), None, ("metrics.m1 DESC",), True)
    assert plan is not None
    assert any(BY_START in step for step in _plan(sqlite_db, plan.tail))


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SqlTrackingStore, str, str]]:
    """600 runs of one experiment with m0, m1 uniform in [0, 1); 5 runs of another."""
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('walk') / 'walk.db'}")
    ensure_schema(db)
    store = SqlTrackingStore(db)
    big, small = (store.create_experiment(name).experiment_id for name in ("big", "small"))
    rng = random.Random(7)
    for i in range(605):
        run = store.create_run(big if i < 600 else small, name=f"r{i}", user="u", start_time=i)
        metrics = [(f"m{j}", rng.random(), i, 0) for j in range(2)]
        store.log_batch(run.run_id, metrics=metrics)
    yield store, big, small
    db.dispose()


@pytest.mark.parametrize(
    ("experiment", "filter_text", "limit", "walks"),
    [
        ("big", "metrics.m0 > 0.5", 21, True),  # ~42 of 600 runs read
        ("big", None, 101, True),
        ("big", "metrics.m0 > 0.5", 201, False),  # ~400 runs: more than the break-even
        ("big", "metrics.m0 > 2", 21, False),  # nothing in the sample passes
        ("big", None, 600, False),  # the page takes every run: nothing to stop early for
        ("small", None, 2, False),  # the index is mostly other experiments' runs
    ],
)
def test_the_walk_is_taken_only_when_it_is_expected_to_pay(
    filled: tuple[SqlTrackingStore, str, str],
    experiment: str,
    filter_text: str | None,
    limit: int,
    walks: bool,
) -> None:
    store, big, small = filled
    eid = big if experiment == "big" else small
    plan = metric_order_plan("sqlite", (eid,), filter_text, ("metrics.m1 DESC",), False)
    assert plan is not None
    with store.db.read() as conn:
        assert plan.worth_it(conn, 0, limit) is walks


def test_conditions_on_the_order_metric_bound_the_walk_and_leave_no_tail(
    sqlite_db: Database,
) -> None:
    plan = metric_order_plan(
        "sqlite", ("e" * 32,), "metrics.m1 > 0.9 and params.p = 'x'", ("metrics.m1 DESC",), True
    )
    assert plan is not None
    assert plan.tail is None
    walk = [s for s in _plan(sqlite_db, plan.first_head) if s.startswith("SEARCH order_metric")]
    assert walk == [f"SEARCH order_metric USING COVERING INDEX {BY_KEY_VALUE} (key=? AND value>?)"]
    for filter_text in (None, "metrics.m1 is not null", "metrics.m0 > 1 or metrics.m1 > 1"):
        plan = metric_order_plan("sqlite", ("e" * 32,), filter_text, ("metrics.m1",), True)
        assert plan is not None
        assert plan.tail is not None, filter_text


def test_a_walk_over_a_short_range_is_always_taken(
    filled: tuple[SqlTrackingStore, str, str],
) -> None:
    store, big, _ = filled
    # ~6 of 600 runs have m1 > 0.99: far fewer than the sample, and no run lacks m1
    plan = metric_order_plan("sqlite", (big,), "metrics.m1 > 0.99", ("metrics.m1 DESC",), False)
    assert plan is not None
    with store.db.read() as conn:
        assert plan.worth_it(conn, 0, 1000)
