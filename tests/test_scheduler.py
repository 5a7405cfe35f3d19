"""The periodic-job scheduler: jobs run on time, failures are counted, one leader per lease."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from keel.errors import InvalidInput
from keel.scheduler import PeriodicJob, Scheduler
from keel.store.database import Database
from keel.store.migrate import ensure_schema


async def _run_for(schedulers: list[Scheduler], seconds: float) -> None:
    tasks = [asyncio.create_task(s.run()) for s in schedulers]
    await asyncio.sleep(seconds)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
    asyncio.run(_run_for([scheduler], 0.4))
    assert calls.count("broken") >= 3
    assert calls.count("fine") >= 3
    assert scheduler.status["broken"].failures == calls.count("broken")
    assert scheduler.status["broken"].last_error == "RuntimeError: rule exploded"
    assert scheduler.status["fine"].failures == 0


def test_two_servers_on_one_database_run_an_exclusive_job_in_one_of_them(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    ensure_schema(db)
    ran: list[str] = []
    first = Scheduler([PeriodicJob("evaluate", 0.05, lambda: ran.append("first"))], db=db)
    second = Scheduler([PeriodicJob("evaluate", 0.05, lambda: ran.append("second"))], db=db)
    asyncio.run(_run_for([first, second], 0.5))
    assert len(ran) >= 3
    assert len(set(ran)) == 1  # one leader ran every tick
    # the leader released its lease when it stopped: the other takes over at once
    _leader, follower = (first, second) if ran[0] == "first" else (second, first)
    ran.clear()
    asyncio.run(_run_for([follower], 0.2))
    assert ran
    assert set(ran) == {"second" if follower is second else "first"}
    db.dispose()


def test_jobs_need_unique_names_and_a_positive_interval() -> None:
    with pytest.raises(InvalidInput, match="unique"):
        Scheduler([PeriodicJob("a", 1, lambda: None), PeriodicJob("a", 1, lambda: None)])
    with pytest.raises(InvalidInput, match="positive"):
        PeriodicJob("a", 0, lambda: None)
    with pytest.raises(InvalidInput, match="name"):
        PeriodicJob("", 1, lambda: None)
