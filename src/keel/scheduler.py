"""Periodic jobs that ``keel server`` runs in the background, one server at a time.

A domain offers its jobs as :class:`PeriodicJob` values (alert evaluation in
``keel.monitoring.jobs``, pipeline schedules in ``keel.pipelines.jobs``); the server's
lifespan runs them all with one :class:`Scheduler`. An ``exclusive`` job is guarded by a
lease in the metadata database (:mod:`keel.store.leases`), so with several servers on one
database exactly one of them runs it at a time, and another takes over within ``ttl`` if
that server dies.

A job that raises is logged with its name and counted, and runs again at its next tick:
one failing job never stops the loop or the other jobs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from keel.errors import InvalidInput

__all__ = ["JobStatus", "PeriodicJob", "Scheduler"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """A blocking function to call every ``every_s`` seconds, in a worker thread.

    ``name`` is also the lease's name for an ``exclusive`` job.
    """

    name: str
    every_s: float
    run: Callable[[], None]
    exclusive: bool = True

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("a periodic job needs a name")
        if not self.every_s > 0:
            raise InvalidInput(f"job {self.name!r}: every_s must be positive, got {self.every_s}")


@dataclass
class JobStatus:
    """How one job has fared: runs, failures, the last error, and whether this server leads."""

    name: str
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    last_run_at: float | None = None
    leading: bool = False
    next_at: float = field(default=0.0, repr=False)


class Scheduler:
    """Run :class:`PeriodicJob` values on an asyncio loop until cancelled.

    ``db`` (a :class:`~keel.store.database.Database`) holds the leases of exclusive jobs;
    without one (a server whose metadata lives on another server) every job runs here.
    """

    def __init__(self, jobs: list[PeriodicJob], *, db: object | None = None) -> None:
        from keel.store.leases import new_holder_id

        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise InvalidInput(f"periodic job names must be unique, got {names}")
        self.jobs = list(jobs)
        self.db = db
        self.holder = new_holder_id()
        self.status = {job.name: JobStatus(job.name) for job in jobs}
        # Ticks run in worker threads that a cancelled run() cannot stop: it counts them
        # and waits for them before giving up its leases (see run()).
        self._flight = threading.Condition()
        self._ticking = 0
        self._stopping = False

    def _lease_ttl(self, job: PeriodicJob) -> float:
        # Long enough to survive a slow tick, short enough that a dead holder is replaced
        # within a few of its intervals.
        return max(3 * job.every_s, 10.0)

    def _holds(self, job: PeriodicJob) -> bool:
        if not job.exclusive or self.db is None:
            return True
        from keel.store.leases import acquire_lease

        return acquire_lease(self.db, f"job:{job.name}", self.holder, self._lease_ttl(job))  # type: ignore[arg-type]

    def tick(self, job: PeriodicJob) -> None:
        """Run ``job`` once here if this server holds (or takes) its lease; record how it went.

        A tick that starts while :meth:`run` is stopping does nothing.
        """
        with self._flight:
            if self._stopping:
                return
            self._ticking += 1
        status = self.status[job.name]
        try:
            status.leading = self._holds(job)
            if not status.leading:
                return
            job.run()
            status.runs += 1
            status.last_error = None
        except Exception as exc:  # noqa: BLE001 - reported and counted; the loop goes on
            status.failures += 1
            status.last_error = f"{type(exc).__name__}: {exc}"
            _log.exception("periodic job %r failed", job.name)
        finally:
            status.last_run_at = time.time()
            with self._flight:
                self._ticking -= 1
                self._flight.notify_all()

    async def run(self) -> None:
        """Tick every job when it is due, each in a worker thread, until cancelled."""
        loop = asyncio.get_running_loop()
        with self._flight:
            self._stopping = False
        now = loop.time()
        for job in self.jobs:
            self.status[job.name].next_at = now
        try:
            while True:
                now = loop.time()
                due = [job for job in self.jobs if self.status[job.name].next_at <= now]
                for job in due:
                    self.status[job.name].next_at = now + job.every_s
                if due:
                    await asyncio.gather(*(asyncio.to_thread(self.tick, job) for job in due))
                wake = min((s.next_at for s in self.status.values()), default=now + 1.0)
                await asyncio.sleep(max(0.01, wake - loop.time()))
        finally:
            # Cancelling the gather leaves its ticks running in their threads, inside an
            # exclusive job or about to renew its lease: releasing before they end would
            # let another server run the job alongside this one, and a renewal after the
            # release would keep a stopped server's lease until its ttl.
            await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        """Let no tick start, wait for the running ones, then release this server's leases."""
        with self._flight:
            self._stopping = True
            self._flight.wait_for(lambda: self._ticking == 0)
        self._release()

    def _release(self) -> None:
        if self.db is None:
            return
        from keel.store.leases import release_lease

        for job in self.jobs:
            if job.exclusive and self.status[job.name].leading:
                try:
                    release_lease(self.db, f"job:{job.name}", self.holder)  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - shutting down; the lease expires anyway
                    _log.warning("could not release the lease of job %r", job.name)
