"""The deployments data plane inside ``keel server``: built with the app, run by its lifespan.

:func:`install_deployments` (called by ``create_app``, no I/O) gives the app a
:class:`~keel.deploy.router.DeploymentRouter` loading versions from the server's own
stores (``app.state.deployment_router``), the
:class:`~keel.deploy.controller.DeploymentController` on the server's deployments store
with the router as its data plane (``app.state.deploy_controller``; None when the
metadata store cannot hold deployments), and mounts the inference routes.

:func:`deployments_lifespan` resumes every deployment at start (each version loaded,
warmed and smoke-tested before the server reports started), ticks the controller every
``TICK_S`` seconds in a background task, and on shutdown cancels the task and closes the
router, which lets requests inside finish and closes every loaded version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from keel.errors import KeelError

__all__ = ["TICK_S", "deployments_lifespan", "install_deployments"]

TICK_S = 0.5
_log = logging.getLogger(__name__)


def install_deployments(app: Any) -> None:
    """Attach the router and controller to ``app.state`` and mount the inference routes."""
    from keel.deploy.router import DeploymentRouter
    from keel.deploy.serving_pool import service_factory
    from keel.server.routes import inference

    stores = app.state.stores
    router = DeploymentRouter(factory=service_factory(stores))
    app.state.deployment_router = router
    app.state.deploy_controller = _controller(stores, router)
    reads = [inference.viewer()] if app.state.auth else []
    app.include_router(inference.router, dependencies=reads)


def _controller(stores: Any, router: Any) -> Any:
    from keel.deploy.controller import DeploymentController

    try:
        return DeploymentController(stores.deployments, router)
    except KeelError as exc:  # e.g. a server whose metadata is another server
        _log.warning("deployments are not served here: %s", exc.message)
        return None


@asynccontextmanager
async def deployments_lifespan(app: Any) -> AsyncIterator[None]:
    """Resume the deployments, tick the controller while the app runs, then close."""
    controller = getattr(app.state, "deploy_controller", None)
    router = getattr(app.state, "deployment_router", None)
    task: asyncio.Task[None] | None = None
    if controller is not None:
        try:
            await controller.resume()
        except Exception:  # noqa: BLE001 - the server starts; the next tick retries
            _log.exception("resuming the deployments failed")
        task = asyncio.get_running_loop().create_task(
            controller.run(every=TICK_S), name="keel-deployment-controller"
        )
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if router is not None:
            await router.close()
