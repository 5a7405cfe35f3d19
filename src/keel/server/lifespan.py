"""What ``keel server`` runs while it serves: the deployments data plane and periodic jobs.

The deployments (``routes.inference_lifespan``) are resumed first; then every domain's
periodic jobs (alert evaluation, pipeline schedules) run on one
:class:`~keel.scheduler.Scheduler`, with leases in the metadata database so that only one
of several servers on it runs each. ``app.state.scheduler`` shows how they fare.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["server_lifespan", "server_scheduler"]


def server_scheduler(stores: Any, settings: Any = None) -> Any:
    """Return the :class:`~keel.scheduler.Scheduler` of every domain's jobs on ``stores``
    (with the server's ``settings``, e.g. the alert interval of its home's config)."""
    from keel.monitoring.jobs import server_jobs as monitoring_jobs
    from keel.pipelines.jobs import server_jobs as pipeline_jobs
    from keel.scheduler import Scheduler

    jobs = [*monitoring_jobs(stores, settings), *pipeline_jobs(stores)]
    return Scheduler(jobs, db=getattr(stores.tracking, "db", None))


@asynccontextmanager
async def server_lifespan(app: Any) -> AsyncIterator[None]:
    """Run the deployments and the periodic jobs while the app serves."""
    from keel.server.routes.inference_lifespan import deployments_lifespan

    async with deployments_lifespan(app):
        scheduler = app.state.scheduler = server_scheduler(
            app.state.stores, getattr(app.state, "settings", None)
        )
        task = None
        if scheduler.jobs:
            task = asyncio.get_running_loop().create_task(scheduler.run(), name="keel-scheduler")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
