"""The periodic jobs the pipelines domain gives ``keel server`` (see :mod:`keel.scheduler`).

``pipeline-schedules`` (every second) starts the runs of due schedules; ``pipeline-
version-triggers`` (every 2 s) fires the triggers on new model and dataset versions.
Both are exclusive (one server at a time ticks them), and each run they start is a
process of its own, so no tick waits for a pipeline. A server whose metadata lives on
another server (a REST store) has no database to schedule on, and no jobs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.scheduler import PeriodicJob
    from keel.stores import Stores

__all__ = ["server_jobs"]

SCHEDULES_EVERY_S = 1.0
VERSIONS_EVERY_S = 2.0


def server_jobs(stores: Stores) -> list[PeriodicJob]:
    """Return the jobs to run in a server on ``stores``."""
    from keel.scheduler import PeriodicJob

    if getattr(stores.tracking, "db", None) is None:
        return []
    from keel.pipelines.schedule_runner import ScheduleRunner, launcher_for
    from keel.pipelines.triggers import poll_versions

    launcher = launcher_for(stores)
    runner = ScheduleRunner(stores, launcher)

    def schedules() -> None:
        runner.tick()

    def versions() -> None:
        poll_versions(stores, launcher)

    return [
        PeriodicJob("pipeline-schedules", SCHEDULES_EVERY_S, schedules),
        PeriodicJob("pipeline-version-triggers", VERSIONS_EVERY_S, versions),
    ]
