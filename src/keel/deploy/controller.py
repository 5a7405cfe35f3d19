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
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from keel.deploy import transitions as tr
from keel.deploy.entities import Deployment, Strategy, check_deployment_name
from keel.deploy.store import DeploymentStore
from keel.deploy.traffic import BackendStats, TrafficPlan
from keel.errors import InvalidInput, KeelError
from keel.governance.identity import acting_as

__all__ = ["CONTROLLER_ACTOR", "MAX_RETRY_S", "RETRY_S", "DeploymentController", "TrafficApplier"]

CONTROLLER_ACTOR = "controller"
RETRY_S = 5.0  # first wait before re-applying a plan the data plane refused
MAX_RETRY_S = 300.0
_log = logging.getLogger(__name__)
_T = TypeVar("_T")


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

    ``store`` is the SQL deployments store of the server's metadata database.
    ``applier`` may be None (a server without a data plane yet, or a test): operations are
    then persisted only, and a controller with an applier applies them on its next tick.
    """

    def __init__(self, store: DeploymentStore, applier: TrafficApplier | None = None) -> None:
        if not callable(getattr(store, "transition", None)):
            raise InvalidInput(
                "the deployment controller runs on the metadata database (a SQL store), "
                f"not on {type(store).__name__}"
            )
        self.store: Any = store
        self.applier = applier
        self._serving: dict[str, TrafficPlan] = {}  # what the data plane serves, by name
        # name -> (revision refused, when to try it again, seconds to wait after that)
        self._refused: dict[str, tuple[int, float, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    @staticmethod
    async def _call(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        # Store calls block on the database: off the event loop, with the caller's
        # context (its acting_as actor) carried into the thread.
        return await asyncio.to_thread(fn, *args, **kwargs)

    def applied_revision(self, name: str) -> int | None:
        """Return the revision of ``name`` the data plane serves (None if none)."""
        plan = self._serving.get(name)
        return None if plan is None else plan.revision

    # -- applying ------------------------------------------------------------------------
    async def _apply(self, dep: Deployment) -> Deployment:
        """Apply ``dep``'s plan; if refused, record the revert and re-raise the error."""
        if self.applier is None:
            return dep
        try:
            await self.applier.apply(dep.plan)
        except KeelError as exc:
            self._backoff(dep)
            why = f"the data plane refused revision {dep.revision}: {exc.message}"
            serving = self._serving.get(dep.name)
            if serving is not None or (dep.rollout is not None and dep.rollout.running):
                plan = serving or dep.plan

                def revert(current: Deployment) -> tr.Change | None:
                    if current.revision != dep.revision:
                        return None  # changed meanwhile: the next tick applies that
                    return tr.fail(current, plan, why)

                with acting_as(CONTROLLER_ACTOR):
                    reverted = await self._call(self.store.transition, dep.name, revert)
                if reverted is not None:
                    try:
                        await self.applier.apply(reverted.plan)
                        self._serving[dep.name] = reverted.plan
                    except KeelError as again:
                        _log.error("deployment %s: revert refused too: %s", dep.name, again)
            raise type(exc)(f"deployment {dep.name!r}: {why}") from exc
        self._serving[dep.name] = dep.plan
        self._refused.pop(dep.name, None)
        return dep

    def _backoff(self, dep: Deployment) -> None:
        # A plan that cannot be applied is retried by later ticks, but not every tick:
        # each attempt loads and warms versions. The wait doubles up to MAX_RETRY_S.
        previous = self._refused.get(dep.name)
        wait = RETRY_S if previous is None or previous[0] != dep.revision else previous[2] * 2
        wait = min(wait, MAX_RETRY_S)
        self._refused[dep.name] = (dep.revision, time.time() + wait, wait)

    def _waiting(self, dep: Deployment, now: float) -> bool:
        refused = self._refused.get(dep.name)
        return refused is not None and refused[0] == dep.revision and now < refused[1]

    def _stats(self, dep: Deployment) -> dict[str, BackendStats]:
        rollout = dep.rollout
        if self.applier is None or rollout is None:
            return {}
        return self.applier.stats(dep.name, rollout.step_started_at / 1000)

    def live_stats(self, name: str) -> dict[str, BackendStats]:
        """Return the data plane's figures for ``name`` since its rollout's step started
        (empty without a data plane or a rollout)."""
        return self._stats(self.store.get_deployment(check_deployment_name(name)))

    async def live(self, name: str) -> tuple[Deployment, dict[str, BackendStats]]:
        """Return the deployment and its live figures (the store read off the event loop,
        the data plane's figures read on it, where the data plane keeps them)."""
        dep = await self._call(self.store.get_deployment, check_deployment_name(name))
        return dep, self._stats(dep)

    # -- the loop ------------------------------------------------------------------------
    async def resume(self) -> None:
        """Apply every deployment's current plan (at server start); rollouts keep their step.

        A deployment whose plan cannot be applied is logged and left to the next tick; the
        others still resume.
        """
        for dep in await self._call(self.store.list_deployments):
            async with self._lock(dep.name):
                try:
                    await self._apply(dep)
                except KeelError as exc:
                    _log.error("deployment %s did not resume: %s", dep.name, exc)

    async def tick(self, now: float | None = None) -> None:
        """Apply unapplied revisions, then advance every rollout whose step is due.

        ``now`` is wall-clock epoch seconds (default ``time.time()``). One deployment's
        failure is logged and does not stop the others.
        """
        moment = time.time() if now is None else now
        deps = await self._call(self.store.list_deployments)
        if self.applier is not None:
            for gone in set(self._serving) - {d.name for d in deps}:
                await self.applier.remove(gone)
                self._serving.pop(gone, None)
        for dep in deps:
            async with self._lock(dep.name):
                try:
                    await self._tick_one(dep.name, moment, dep)
                except KeelError as exc:
                    _log.warning("deployment %s: %s", dep.name, exc)

    def _idle(self, dep: Deployment) -> bool:
        running = dep.rollout is not None and dep.rollout.running
        return not running and self.applied_revision(dep.name) == dep.revision

    async def _tick_one(
        self, name: str, now: float, listed: Deployment | None = None
    ) -> Deployment:
        if listed is not None and self._idle(listed):
            return listed  # nothing to apply or judge: no read
        dep = await self._call(self.store.get_deployment, name)
        if self.applier is None:
            return dep  # nothing is served here: no step can be judged
        if self.applied_revision(name) != dep.revision:
            if self._waiting(dep, now):
                return dep  # refused a moment ago: retried after its back-off
            dep = await self._apply(dep)
        moment = int(now * 1000)
        while dep.rollout is not None and dep.rollout.running:
            stats = self._stats(dep)
            if tr.step(dep, stats, moment) is None:
                break  # not due: no write transaction

            def decide(
                current: Deployment, seen: int = dep.revision, stats: Any = stats
            ) -> tr.Change | None:
                if current.revision != seen:
                    return None  # changed meanwhile (another server, an operator)
                return tr.step(current, stats, moment)

            with acting_as(CONTROLLER_ACTOR):
                moved = await self._call(self.store.transition, name, decide)
            if moved is None:
                break
            dep = await self._apply(moved)
            if dep.rollout is None or dep.rollout.strategy is not Strategy.BLUE_GREEN:
                break  # a canary step waits its interval; blue-green switches at once
        return dep

    async def run(self, *, every: float = 1.0) -> None:
        """Tick every ``every`` seconds until cancelled (errors are logged, never fatal)."""
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the background loop must outlive one bad tick
                _log.exception("deployment controller tick failed")
            await asyncio.sleep(every)

    # -- operations (the REST routes call these; the SDK calls the store directly) -------
    async def _change(
        self, name: str, op: Callable[..., Deployment], *args: Any, **kw: Any
    ) -> Deployment:
        async with self._lock(name):
            dep = await self._call(op, *args, **kw)
            dep = await self._apply(dep)
            if dep.rollout is not None and dep.rollout.running and self.applier is not None:
                dep = await self._tick_one(name, time.time())  # blue-green switches now
            return dep

    async def create(
        self,
        name: str,
        model: str,
        *,
        environment: str = "default",
        description: str | None = None,
    ) -> Deployment:
        """Return a new deployment serving ``model`` (applied before returning).

        If the data plane cannot serve it, the deployment is deleted again and the
        error raised: a version that fails to load never receives traffic.
        """
        name = check_deployment_name(name)
        async with self._lock(name):
            dep = await self._call(
                self.store.create_deployment,
                name,
                model,
                environment=environment,
                description=description,
            )
            try:
                return await self._apply(dep)
            except KeelError:
                await self._call(self.store.delete_deployment, name)
                raise

    async def deploy(
        self,
        name: str,
        model: str,
        *,
        strategy: str = "blue-green",
        config: Mapping[str, object] | None = None,
    ) -> Deployment:
        """Return the deployment after starting a rollout of ``model`` by ``strategy``."""
        name = check_deployment_name(name)
        return await self._change(
            name, self.store.start_rollout, name, model, strategy=strategy, config=config
        )

    async def set_traffic(self, name: str, weights: Mapping[str, float]) -> Deployment:
        """Return the deployment after a manual traffic split (applied)."""
        name = check_deployment_name(name)
        return await self._change(name, self.store.set_traffic, name, weights)

    async def promote(self, name: str, *, to: str | None = None) -> Deployment:
        """Return the deployment after promoting its candidate (applied)."""
        name = check_deployment_name(name)
        _, stats = await self.live(name)
        return await self._change(name, self.store.promote, name, to=to, stats=stats)

    async def rollback(self, name: str, *, to: str | None = None) -> Deployment:
        """Return the deployment after a rollback (applied; instant if the target is warm)."""
        name = check_deployment_name(name)
        _, stats = await self.live(name)
        return await self._change(name, self.store.rollback, name, to=to, stats=stats)

    async def abort(self, name: str) -> Deployment:
        """Return the deployment after aborting its rollout (applied)."""
        name = check_deployment_name(name)
        _, stats = await self.live(name)
        return await self._change(name, self.store.abort, name, stats=stats)

    async def pause_rollout(self, name: str) -> Deployment:
        """Return the deployment after pausing its canary (held at its step, applied)."""
        name = check_deployment_name(name)
        return await self._change(name, self.store.pause, name)

    async def resume_rollout(self, name: str) -> Deployment:
        """Return the deployment after resuming its paused canary (applied)."""
        name = check_deployment_name(name)
        return await self._change(name, self.store.resume, name)

    async def delete(self, name: str) -> None:
        """Delete a deployment and stop serving it."""
        name = check_deployment_name(name)
        async with self._lock(name):
            await self._call(self.store.delete_deployment, name)
            if self.applier is not None:
                await self.applier.remove(name)
            self._serving.pop(name, None)
