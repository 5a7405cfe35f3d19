"""The scheduler's tick: start the run of every due schedule, by its missed-run policy.

One tick reads the enabled schedules whose ``next_run_at`` has passed, decides with
:func:`~keel.pipelines.schedules.plan_due` which due time (if any) to run, and for it:
takes the schedule's lease (a run still going holds it: the due times then wait, and
the policy applies when it ends), moves ``next_run_at`` on only if it is still the value
read (compare and set), inserts the dispatch of that due time (unique), and starts its
process. Any step that loses a race leaves the schedule to whoever won it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from keel.pipelines.dispatch import (
    LEASE_TTL_S,
    Launcher,
    dispatch_values,
    insert_dispatch,
    new_dispatch_id,
    prune_logs,
    reap_lost,
    schedule_lease,
)
from keel.pipelines.schedules import PipelineSchedule, plan_due
from keel.pipelines.sql_schedules import schedule_from
from keel.store.clock import now_ms
from keel.store.leases import acquire_lease, new_holder_id, release_lease
from keel.store.schema_scheduling import pipeline_schedules

__all__ = ["ScheduleRunner", "launcher_for"]

_log = logging.getLogger(__name__)
S = pipeline_schedules
MAX_PER_TICK = 500
PRUNE_EVERY_S = 3600.0

_launchers: dict[str, Launcher] = {}
_launchers_lock = threading.Lock()


def launcher_for(stores: Any) -> Launcher:
    """Return this process's one launcher for the database ``stores`` is on."""
    with _launchers_lock:
        launcher = _launchers.get(stores.tracking_uri)
        if launcher is None or launcher.db is not stores.tracking.db:
            launcher = _launchers[stores.tracking_uri] = Launcher(stores)
        return launcher


class ScheduleRunner:
    """Ticks the schedules of one database: what ``keel server``'s schedules job runs."""

    def __init__(
        self,
        stores: Any,
        launcher: Launcher | None = None,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.stores = stores
        self.db = stores.tracking.db
        self.launcher = launcher or launcher_for(stores)
        self.clock = clock
        self.holder = new_holder_id()
        self._next_prune = 0.0

    def tick(self, now: int | None = None) -> list[str]:
        """Start the runs of the schedules due at ``now`` (ms; default the clock); return
        the dispatch ids started. One schedule's failure is logged and recorded on it.

        ``now`` decides only what is due; leases, heartbeats and start times are real time.
        """
        now = self.clock() if now is None else now
        reap_lost(self.db)
        self._prune()
        query = (
            select(S)
            .where(S.c.enabled.is_(True), S.c.next_run_at <= now)
            .order_by(S.c.next_run_at)
            .limit(MAX_PER_TICK)
        )
        with self.db.read() as conn:
            due = [schedule_from(row) for row in conn.execute(query)]
        started = []
        for schedule in due:
            try:
                dispatch_id = self._one(schedule, now)
            except Exception as exc:  # noqa: BLE001 - one bad schedule never stops the rest
                _log.exception("schedule %r could not start its run", schedule.name)
                self._record_error(schedule.name, f"{type(exc).__name__}: {exc}")
                continue
            if dispatch_id is not None:
                started.append(dispatch_id)
        return started

    def _prune(self) -> None:
        import time

        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_S
        try:
            prune_logs()
        except OSError:
            _log.warning("could not prune old pipeline run logs", exc_info=True)

    def _record_error(self, name: str, error: str) -> None:
        try:
            with self.db.write() as conn:
                conn.execute(S.update().where(S.c.name == name).values(last_error=error[:4000]))
        except Exception:  # noqa: BLE001 - the database itself failing: logged above
            _log.warning("could not record the error of schedule %r", name)

    def _advance(self, schedule: PipelineSchedule, next_run_at: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                S.update()
                .where(S.c.name == schedule.name, S.c.next_run_at == schedule.next_run_at)
                .values(next_run_at=next_run_at)
            )

    def _one(self, schedule: PipelineSchedule, now: int) -> str | None:
        plan = plan_due(schedule, now)
        if plan is None:
            return None
        if plan.run_at is None:  # "skip": every due time was missed
            self._advance(schedule, plan.next_run_at)
            return None
        lease = schedule_lease(schedule.name)
        dispatch_id = new_dispatch_id()
        if not acquire_lease(self.db, lease, dispatch_id, LEASE_TTL_S):
            return None  # its last run is still going
        started = False
        try:
            with self.db.write() as conn:
                current = conn.execute(
                    select(S.c.next_run_at, S.c.enabled)
                    .where(S.c.name == schedule.name)
                    .with_for_update()
                ).first()
                if current is None or not current.enabled:
                    return None
                if current.next_run_at != schedule.next_run_at:
                    return None  # another server moved it on meanwhile
                values = dispatch_values(
                    dispatch_id=dispatch_id,
                    source="schedule",
                    name=schedule.name,
                    event_key=str(plan.run_at),
                    definition=schedule,
                    params=schedule.params,
                    holder=self.holder,
                    lease=lease,
                    due_at=plan.run_at,
                    now=now_ms(),
                )
                inserted = insert_dispatch(conn, values)
                moved: dict[str, Any] = {"next_run_at": plan.next_run_at}
                if inserted:
                    moved.update(
                        last_run_at=values["started_at"], last_status="running", last_error=None
                    )
                conn.execute(S.update().where(S.c.name == schedule.name).values(**moved))
            if not inserted:
                return None  # that due time was started already
            started = True
        finally:
            if not started:
                release_lease(self.db, lease, dispatch_id)
        self.launcher.start(dispatch_id, schedule.workdir)
        return dispatch_id
