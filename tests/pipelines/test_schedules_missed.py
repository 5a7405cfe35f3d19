"""The missed-run policies, after a server was down for days (a controllable clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.pipelines.schedule_support import SQL_BACKENDS, open_sql_stores, records, write_flow

from keel.pipelines.dispatch import Launcher
from keel.pipelines.schedule_runner import ScheduleRunner
from keel.pipelines.schedule_store import new_schedule
from keel.pipelines.schedules import plan_due
from keel.pipelines.sql_schedules import SqlScheduleStore

DAY = 86_400_000


@pytest.fixture(params=SQL_BACKENDS)
def sql_stores(
    request: pytest.FixtureRequest, keel_env: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    return open_sql_stores(request, monkeypatch)


def _nightly(stores: Any, tmp_path: Path, missed: str, **options: Any) -> SqlScheduleStore:
    store = SqlScheduleStore(stores.tracking.db)
    flow = write_flow(tmp_path)
    params = {"path": str(tmp_path / "runs.jsonl"), "tag": missed}
    store.create_schedule(
        new_schedule(
            "nightly",
            f"{flow}:rec",
            "0 3 * * *",
            params=params,
            missed=missed,
            executor="inline",
            **options,
        )
    )
    return store


def _due_times(store: SqlScheduleStore) -> list[int]:
    return sorted(d.due_at for d in store.list_dispatches(name="nightly"))


def test_latest_runs_once_for_three_missed_nights(sql_stores: Any, tmp_path: Path) -> None:
    store = _nightly(sql_stores, tmp_path, "latest")
    first = store.get_schedule("nightly").next_run_at
    runner = ScheduleRunner(sql_stores, Launcher(sql_stores))
    back = first + 3 * DAY + 3_600_000  # down from before night 0 to an hour after night 3
    assert len(runner.tick(back)) == 1
    assert runner.launcher.wait(60)
    assert _due_times(store) == [first + 3 * DAY]
    assert store.get_schedule("nightly").next_run_at == first + 4 * DAY
    assert runner.tick(back + 1000) == []
    assert len(records(tmp_path / "runs.jsonl")) == 1


def test_skip_runs_nothing_missed_and_waits_for_the_next_night(
    sql_stores: Any, tmp_path: Path
) -> None:
    store = _nightly(sql_stores, tmp_path, "skip")
    first = store.get_schedule("nightly").next_run_at
    runner = ScheduleRunner(sql_stores, Launcher(sql_stores))
    assert runner.tick(first + 2 * DAY + 3_600_000) == []
    assert store.get_schedule("nightly").next_run_at == first + 3 * DAY
    assert _due_times(store) == []
    # On time (within the grace of a minute) it runs.
    assert len(runner.tick(first + 3 * DAY + 30_000)) == 1
    assert runner.launcher.wait(60)
    assert _due_times(store) == [first + 3 * DAY]


def test_all_runs_each_missed_night_in_turn_up_to_max_catchup(
    sql_stores: Any, tmp_path: Path
) -> None:
    store = _nightly(sql_stores, tmp_path, "all", max_catchup=3)
    first = store.get_schedule("nightly").next_run_at
    runner = ScheduleRunner(sql_stores, Launcher(sql_stores))
    back = first + 5 * DAY + 60_000  # nights 0..5 missed: only 3, 4 and 5 are kept
    for _ in range(3):
        assert len(runner.tick(back)) == 1
        assert runner.tick(back) == []  # one at a time: the lease is held while it runs
        assert runner.launcher.wait(60)
    assert runner.tick(back) == []
    assert _due_times(store) == [first + 3 * DAY, first + 4 * DAY, first + 5 * DAY]
    starts = [r["start"] for r in records(tmp_path / "runs.jsonl")]
    assert starts == sorted(starts)
    assert len(starts) == 3
    assert store.get_schedule("nightly").next_run_at == first + 6 * DAY


def test_a_paused_schedule_does_not_run_and_resuming_does_not_catch_up(
    sql_stores: Any, tmp_path: Path
) -> None:
    store = _nightly(sql_stores, tmp_path, "all")
    first = store.get_schedule("nightly").next_run_at
    runner = ScheduleRunner(sql_stores, Launcher(sql_stores))
    paused = store.set_schedule_enabled("nightly", False)
    assert paused.enabled is False
    assert paused.next_run_at is None
    assert runner.tick(first + 2 * DAY) == []
    resumed = store.set_schedule_enabled("nightly", True)
    assert resumed.enabled
    assert resumed.next_run_at == first
    assert _due_times(store) == []


def test_plan_due_bounds_its_walk_over_a_long_downtime() -> None:
    from dataclasses import replace

    schedule = replace(
        new_schedule("s", "m:p", "* * * * * *", missed="all", max_catchup=5), next_run_at=0
    )
    year = 365 * DAY
    plan = plan_due(schedule, year)  # 31 million due times; five kept, walked back from now
    assert plan is not None
    assert plan.run_at == year - 4000
    assert plan.next_run_at == year - 3000
    assert plan.dropped == 1
    assert plan_due(replace(schedule, next_run_at=year + 1), year) is None


def test_a_fixed_time_runs_once_on_the_night_the_clocks_go_back() -> None:
    from dataclasses import replace
    from datetime import UTC, datetime

    from keel.pipelines.schedules import next_due

    def ms(*args: int) -> int:
        return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)

    # Paris, 25 October 2026: 02:30 happens at 00:30 UTC (CEST) and again at 01:30 (CET).
    night = next_due("30 2 * * *", "Europe/Paris", ms(2026, 10, 24, 12))
    assert night == ms(2026, 10, 25, 0, 30)
    assert next_due("30 2 * * *", "Europe/Paris", night) == ms(2026, 10, 26, 1, 30)
    # An hourly job runs in both hours, as cron does.
    hourly = next_due("30 * * * *", "Europe/Paris", night)
    assert hourly == ms(2026, 10, 25, 1, 30)
    schedule = replace(
        new_schedule("s", "m:p", "30 2 * * *", timezone="Europe/Paris", missed="all"),
        next_run_at=night,
    )
    plan = plan_due(schedule, ms(2026, 10, 25, 1, 45))
    assert plan is not None
    assert plan.run_at == night
    assert plan.next_run_at == ms(2026, 10, 26, 1, 30)
    # Spring forward: 02:30 does not exist on 29 March; that night's run is at 03:00 CEST.
    assert next_due("30 2 * * *", "Europe/Paris", ms(2026, 3, 28, 12)) == ms(2026, 3, 29, 1)
