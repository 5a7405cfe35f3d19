"""Scheduled runs: started as processes on time, never two at once for one schedule even
with two servers on one database, none lost or repeated per due time, failures recorded."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.pipelines.schedule_support import (
    SQL_BACKENDS,
    open_sql_stores,
    records,
    wait_for,
    write_flow,
)

from keel.pipelines.dispatch import Launcher, finish_dispatch
from keel.pipelines.schedule_runner import ScheduleRunner
from keel.pipelines.schedule_store import new_schedule
from keel.pipelines.schedules import next_due
from keel.pipelines.sql_schedules import SqlScheduleStore
from keel.store.leases import lease_holder


@pytest.fixture(params=SQL_BACKENDS)
def sql_stores(
    request: pytest.FixtureRequest, keel_env: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    return open_sql_stores(request, monkeypatch)


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    return write_flow(tmp_path)


def _store(stores: Any) -> SqlScheduleStore:
    return SqlScheduleStore(stores.tracking.db)


def _overlaps(lines: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    spans = sorted((r["start"], r["end"]) for r in lines)
    return [(a, b) for a, b in itertools.pairwise(spans) if b[0] < a[1]]


def test_two_servers_start_each_due_time_once_and_never_two_runs_at_once(
    sql_stores: Any, flow: Path, tmp_path: Path
) -> None:
    out = tmp_path / "runs.jsonl"
    store = _store(sql_stores)
    # Every second, each run sleeping 1.2 s: a run is always still going at the next due
    # time, so only the lease keeps two runs apart; "all" catches every due time up.
    store.create_schedule(
        new_schedule(
            "every-second",
            f"{flow}:rec",
            "* * * * * *",
            params={"path": str(out), "sleep": 1.2},
            missed="all",
            max_catchup=1000,
            executor="inline",
        )
    )
    first = store.get_schedule("every-second").next_run_at
    last = first + 3000  # these four due times must each run exactly once
    servers = [ScheduleRunner(sql_stores, Launcher(sql_stores)) for _ in range(2)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def serve(runner: ScheduleRunner) -> None:
        while not stop.is_set():
            try:
                runner.tick()
            except BaseException as exc:
                errors.append(exc)
            time.sleep(0.05)

    threads = [threading.Thread(target=serve, args=(s,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: any((d.due_at or 0) >= last for d in store.list_dispatches()), timeout=120)
    finally:
        store.set_schedule_enabled("every-second", False)
        stop.set()
        for thread in threads:
            thread.join(10)
        for server in servers:
            assert server.launcher.wait(60)
    assert errors == []
    dispatches = store.list_dispatches(name="every-second", limit=1000)
    due = sorted(d.due_at for d in dispatches)
    assert due == list(range(first, due[-1] + 1, 1000))  # none lost, none twice
    assert all(d.status == "finished" for d in dispatches), dispatches
    assert len({d.run_id for d in dispatches}) == len(dispatches)
    lines = records(out)
    assert len(lines) == len(dispatches)
    assert _overlaps(lines) == []
    assert {d.dispatch_id for d in dispatches} <= {
        *servers[0].launcher.started,
        *servers[1].launcher.started,
    }
    schedule = store.get_schedule("every-second")
    newest = max(dispatches, key=lambda d: d.due_at)
    assert schedule.last_run_id == newest.run_id
    assert schedule.last_status == "finished"
    assert lease_holder(sql_stores.tracking.db, "schedule:every-second") is None


def test_two_schedulers_as_two_servers_run_a_schedule_without_overlap(
    sql_stores: Any, flow: Path, tmp_path: Path
) -> None:
    from keel.pipelines.jobs import server_jobs
    from keel.scheduler import Scheduler

    out = tmp_path / "runs.jsonl"
    store = _store(sql_stores)
    store.create_schedule(
        new_schedule(
            "often",
            f"{flow}:rec",
            "* * * * * *",
            params={"path": str(out), "sleep": 0.5},
            executor="inline",
        )
    )
    db = sql_stores.tracking.db
    schedulers = [Scheduler(server_jobs(sql_stores), db=db) for _ in range(2)]

    async def run_until_three_finished() -> None:
        tasks = [asyncio.create_task(s.run()) for s in schedulers]
        try:
            for _ in range(1200):
                done = [d for d in store.list_dispatches() if d.status == "finished"]
                if len(done) >= 3:
                    return
                await asyncio.sleep(0.1)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(run_until_three_finished())
    store.set_schedule_enabled("often", False)
    from keel.pipelines.schedule_runner import launcher_for

    assert launcher_for(sql_stores).wait(60)
    leading = [s.status["pipeline-schedules"].runs > 0 for s in schedulers]
    assert leading.count(True) >= 1
    dispatches = store.list_dispatches(name="often")
    assert len({d.due_at for d in dispatches}) == len(dispatches)
    assert _overlaps(records(out)) == []
    assert len(records(out)) == len([d for d in dispatches if d.status == "finished"])


def test_a_bad_reference_or_failing_pipeline_is_recorded_and_the_others_still_run(
    sql_stores: Any, flow: Path, tmp_path: Path
) -> None:
    store = _store(sql_stores)
    out = tmp_path / "ok.jsonl"
    for name, ref in (
        ("a-missing-file", f"{tmp_path / 'nowhere.py'}:rec"),
        ("b-failing", f"{flow}:broken"),
        ("c-fine", f"{flow}:rec"),
    ):
        params = {"path": str(out)} if name == "c-fine" else {}
        store.create_schedule(
            new_schedule(name, ref, "0 3 * * *", params=params, executor="inline")
        )
    runner = ScheduleRunner(sql_stores, Launcher(sql_stores))
    later = max(s.next_run_at for s in store.list_schedules()) + 10
    started = runner.tick(later)
    assert len(started) == 3
    assert runner.launcher.wait(60)
    by_name = {s.name: s for s in store.list_schedules()}
    assert by_name["a-missing-file"].last_status == "failed"
    assert "NotFound: no such file" in by_name["a-missing-file"].last_error
    assert by_name["a-missing-file"].last_run_id is None
    assert by_name["b-failing"].last_status == "failed"
    assert "the step exploded" in by_name["b-failing"].last_error
    assert by_name["b-failing"].last_run_id is not None  # the failed pipeline run, to resume
    assert by_name["c-fine"].last_status == "finished"
    assert len(records(out)) == 1
    assert runner.tick(later) == []  # nothing is due twice


def test_a_run_whose_process_died_is_failed_by_its_watcher_and_its_lease_released(
    sql_stores: Any, flow: Path, tmp_path: Path
) -> None:
    import os
    import signal

    store = _store(sql_stores)
    store.create_schedule(
        new_schedule(
            "slow",
            f"{flow}:rec",
            "0 3 * * *",
            params={"path": str(tmp_path / "x.jsonl"), "sleep": 60},
            executor="inline",
        )
    )
    runner = ScheduleRunner(sql_stores, Launcher(sql_stores))
    due = store.get_schedule("slow").next_run_at
    [dispatch_id] = runner.tick(due + 5)
    db = sql_stores.tracking.db
    assert lease_holder(db, "schedule:slow").holder == dispatch_id
    assert runner.tick(due + 86_400_000 + 5) == []  # due again, but its run is still going
    pid = wait_for(lambda: store.list_dispatches(name="slow")[0].pid)
    os.kill(pid, signal.SIGKILL)
    assert runner.launcher.wait(30)
    [dispatch] = store.list_dispatches(name="slow")
    assert dispatch.status == "failed"
    assert "exited with code -9" in dispatch.error
    assert lease_holder(db, "schedule:slow") is None
    assert not finish_dispatch(db, dispatch_id, "finished")  # an ended dispatch stays ended


def test_a_dispatch_that_stopped_beating_is_marked_lost(sql_stores: Any, flow: Path) -> None:
    from keel.pipelines.dispatch import LOST_AFTER_MS, reap_lost
    from keel.store.schema_scheduling import pipeline_dispatches

    store = _store(sql_stores)
    store.create_schedule(new_schedule("ghost", f"{flow}:rec", "0 3 * * *"))
    db = sql_stores.tracking.db
    with db.write() as conn:
        conn.execute(
            pipeline_dispatches.insert().values(
                dispatch_id="a" * 32,
                source="schedule",
                name="ghost",
                event_key="1",
                pipeline=f"{flow}:rec",
                params="{}",
                executor="inline",
                status="running",
                holder="a-dead-server",
                started_at=1,
                heartbeat_at=1,
            )
        )
    assert reap_lost(db, now=LOST_AFTER_MS) == 0  # not stale yet
    assert reap_lost(db, now=LOST_AFTER_MS + 2) == 1
    [dispatch] = store.list_dispatches(name="ghost")
    assert dispatch.status == "lost"
    assert store.get_schedule("ghost").last_status == "lost"


def test_next_due_honours_the_time_zone_and_seconds() -> None:
    paris_3am = next_due("0 3 * * *", "Europe/Paris", 0)
    assert paris_3am == 2 * 3600 * 1000  # 03:00 in Paris on 1970-01-01 is 02:00 UTC
    assert next_due("0 3 * * *", "UTC", 0) == 3 * 3600 * 1000
    assert next_due("* * * * * */15", "UTC", 1_000) == 15_000
    assert replace(new_schedule("x", "m:p", "0 3 * * *"), enabled=False).enabled is False


def test_run_logs_older_than_the_retention_are_pruned(keel_env: Any) -> None:
    import os

    from keel.pipelines.dispatch import LOG_DAYS, _log_dir, prune_logs

    folder = _log_dir()
    old, new = folder / "old.log", folder / "new.log"
    old.write_text("x")
    new.write_text("y")
    month_ago = old.stat().st_mtime - (LOG_DAYS + 1) * 86_400
    os.utime(old, (month_ago, month_ago))
    assert prune_logs() == 1
    assert not old.exists()
    assert new.exists()
