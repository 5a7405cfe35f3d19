"""The periodic-job scheduler: jobs run on time, failures are counted, one leader per lease."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from keel.errors import InvalidInput
from keel.scheduler import PeriodicJob, Scheduler
from keel.store.database import Database
from keel.store.leases import lease_holder
from keel.store.migrate import ensure_schema

WAIT_S = 30.0  # a bound on each wait, not a timing assertion


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _until(what: str, ok: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def _run_until(schedulers: list[Scheduler], what: str, ok: Callable[[], bool]) -> None:
    """Run ``schedulers`` until ``ok()`` (bounded), then stop them in that order."""
    tasks = [asyncio.create_task(s.run()) for s in schedulers]
    try:
        await _until(what, ok)
    finally:
        for task in tasks:
            await _stop(task)


def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    ensure_schema(db)
    return db


def test_a_failing_job_is_counted_and_the_others_keep_running() -> None:
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("rule exploded")

    scheduler = Scheduler(
        [
            PeriodicJob("broken", 0.05, broken),
            PeriodicJob("fine", 0.05, lambda: calls.append("fine")),
        ]
    )
    asyncio.run(
        _run_until(
            [scheduler],
            "three ticks of each job",
            lambda: calls.count("broken") >= 3 and calls.count("fine") >= 3,
        )
    )
    assert scheduler.status["broken"].failures == calls.count("broken")
    assert scheduler.status["broken"].runs == 0
    assert scheduler.status["broken"].last_error == "RuntimeError: rule exploded"
    assert scheduler.status["fine"].failures == 0
    assert scheduler.status["fine"].runs == calls.count("fine")


def test_two_servers_on_one_database_run_an_exclusive_job_in_one_of_them(tmp_path: Path) -> None:
    db = _db(tmp_path)
    ran: list[str] = []
    first = Scheduler([PeriodicJob("evaluate", 0.05, lambda: ran.append("first"))], db=db)
    second = Scheduler([PeriodicJob("evaluate", 0.05, lambda: ran.append("second"))], db=db)
    names = {first.holder: "first", second.holder: "second"}

    async def both_then_the_follower_stops_first() -> str:
        tasks = {s.holder: asyncio.create_task(s.run()) for s in (first, second)}
        try:
            await _until("three runs of the job", lambda: len(ran) >= 3)
            leader = lease_holder(db, "job:evaluate").holder
            # the follower stops first, so that its last tick still meets the leader's lease
            # (stopping the leader first hands the job over, which is the next check's subject)
            [follower] = [h for h in tasks if h != leader]
            await _stop(tasks[follower])
        finally:
            for task in tasks.values():
                await _stop(task)
        return leader

    leader = asyncio.run(both_then_the_follower_stops_first())
    assert len(ran) >= 3
    assert set(ran) == {names[leader]}  # one leader ran every tick
    # the leader released its lease when it stopped: the other takes over at once
    assert lease_holder(db, "job:evaluate") is None
    follower = second if leader == first.holder else first
    ran.clear()
    asyncio.run(_run_until([follower], "the follower's first run", lambda: bool(ran)))
    assert set(ran) == {names[follower.holder]}
    db.dispose()


def test_a_stopping_server_keeps_its_lease_until_its_running_job_ends(tmp_path: Path) -> None:
    db = _db(tmp_path)
    inside, finish = threading.Event(), threading.Event()
    other_ran: list[int] = []

    def slow() -> None:
        inside.set()
        finish.wait(WAIT_S)

    first = Scheduler([PeriodicJob("evaluate", 0.05, slow)], db=db)
    job = PeriodicJob("evaluate", 0.05, lambda: other_ran.append(1))
    other = Scheduler([job], db=db)

    async def scenario() -> None:
        task = asyncio.create_task(first.run())
        try:
            assert await asyncio.to_thread(inside.wait, WAIT_S)
            task.cancel()  # the server stops while its job is still running in its thread
            for _ in range(20):  # the loop delivers the cancellation while the other ticks
                await asyncio.sleep(0.01)
                await asyncio.to_thread(other.tick, job)
            assert other_ran == []  # never alongside the job still running
            assert lease_holder(db, "job:evaluate").holder == first.holder
        finally:
            finish.set()
            await _stop(task)

    asyncio.run(scenario())
    assert first.status["evaluate"].runs == 1
    assert lease_holder(db, "job:evaluate") is None  # released once the job had ended
    other.tick(job)
    assert other_ran == [1]
    db.dispose()


def test_jobs_need_unique_names_and_a_positive_interval() -> None:
    with pytest.raises(InvalidInput, match="unique"):
        Scheduler([PeriodicJob("a", 1, lambda: None), PeriodicJob("a", 1, lambda: None)])
    with pytest.raises(InvalidInput, match="positive"):
        PeriodicJob("a", 0, lambda: None)
    with pytest.raises(InvalidInput, match="name"):
        PeriodicJob("", 1, lambda: None)
