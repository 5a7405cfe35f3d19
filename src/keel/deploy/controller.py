"""The deployment controller: drives rollouts and hands every traffic plan to the data plane.

The data plane (the deployment router inside ``keel server``) implements
:class:`TrafficApplier`. The server builds one :class:`DeploymentController` on its
deployments store and its applier, then::

    controller = DeploymentController(stores.deployments, applier)
    await controller.resume()          # at start: apply every deployment's current plan
    task = asyncio.create_task(controller.run(every=1.0))   # tick until cancelled

``tick`` applies any revision the data plane has not applied yet (a change made by the
CLI or SDK on the same database, or by another server), then advances every rollout whose
step is due: it reads the live :class:`BackendStats` since the step started, judges the
canary gate, persists the new plan as a new revision (with history and audit) and applies
it. A plan the applier refuses is never left recorded as serving: the controller records a
revert to the plan still serving. Automatic changes are recorded with the actor
``controller``.

Times: ``now`` and ``since`` are wall-clock epoch SECONDS (``time.time()``), because a step's
start is persisted and must survive a restart; the store keeps epoch milliseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from keel.deploy.entities import Deployment
from keel.deploy.traffic import BackendStats, TrafficPlan

__all__ = ["CONTROLLER_ACTOR", "DeploymentController", "TrafficApplier"]

CONTROLLER_ACTOR = "controller"


@runtime_checkable
class TrafficApplier(Protocol):
    """What the data plane does for the controller (implemented by the deployment router)."""

    async def apply(self, plan: TrafficPlan) -> None:
        """Make ``plan`` the one serving its deployment.

        Load and warm every backend of ``plan.all_backends()`` not yet loaded, check its
        health and make a smoke prediction, then swap the whole plan in atomically. Raise
        a ``keel.errors.KeelError`` if any backend fails; the previous plan keeps serving
        untouched. Applying the revision already serving is a no-op.
        """

    async def remove(self, deployment: str) -> None:
        """Stop serving ``deployment`` and unload its versions (no-op if not served)."""

    def stats(self, deployment: str, since: float) -> dict[str, BackendStats]:
        """Return live figures per ``Backend.key`` of ``deployment`` since ``since``.

        ``since`` is wall-clock epoch seconds (``time.time()``). Shadow backends report
        the requests mirrored to them, with ``extra["agreement"]`` (0..1, the share of
        mirrored requests where the shadow's answer equalled the live one). A backend with
        no requests in the window may be absent or have ``requests == 0``.
        """


class DeploymentController:
    """Runs rollouts of the deployments in one store against one data plane (see module doc).

    ``applier`` may be None (a server without a data plane, or a test): every operation
    is then persisted only, and a controller with an applier applies it on its next tick.
    """

    def __init__(self, store: object, applier: TrafficApplier | None = None) -> None:
        self.store = store
        self.applier = applier
        self._applied: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def resume(self) -> None:
        """Apply every deployment's current plan (at server start); rollouts keep their step."""
        raise NotImplementedError  # implemented in the next commit

    async def tick(self, now: float | None = None) -> None:
        """Apply unapplied revisions, then advance every rollout whose step is due."""
        raise NotImplementedError

    async def run(self, *, every: float = 1.0) -> None:
        """Tick every ``every`` seconds until cancelled (errors are logged, never fatal)."""
        raise NotImplementedError

    def live_stats(self, name: str) -> dict[str, BackendStats]:
        """Return the data plane's figures for ``name`` since its rollout's step started."""
        raise NotImplementedError

    # -- operations (SDK, REST and CLI call these through the store or the server) ---------
    async def create(
        self,
        name: str,
        model: str,
        *,
        environment: str = "default",
        description: str | None = None,
    ) -> Deployment:
        """Return a new deployment serving ``model`` (applied before returning)."""
        raise NotImplementedError

    async def deploy(
        self,
        name: str,
        model: str,
        *,
        strategy: str = "blue-green",
        config: Mapping[str, object] | None = None,
    ) -> Deployment:
        """Return the deployment after starting a rollout of ``model`` by ``strategy``."""
        raise NotImplementedError

    async def set_traffic(self, name: str, weights: Mapping[str, float]) -> Deployment:
        """Return the deployment after a manual traffic split (applied)."""
        raise NotImplementedError

    async def promote(self, name: str, *, to: str | None = None) -> Deployment:
        """Return the deployment after promoting its candidate (applied)."""
        raise NotImplementedError

    async def rollback(self, name: str, *, to: str | None = None) -> Deployment:
        """Return the deployment after a rollback (applied; instant if the target is warm)."""
        raise NotImplementedError

    async def abort(self, name: str) -> Deployment:
        """Return the deployment after aborting its rollout (applied)."""
        raise NotImplementedError

    async def delete(self, name: str) -> None:
        """Delete a deployment and stop serving it."""
        raise NotImplementedError
