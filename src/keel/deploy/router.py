"""The deployment router: the serving data plane that applies the control plane's plans.

:class:`DeploymentRouter` implements the control plane's ``TrafficApplier``. Per
deployment it holds one immutable :class:`RoutingTable` — the plan and, for every backend
of it (live, standby, shadow), a loaded :class:`~keel.deploy.serving_pool.Slot`, its stats
window and its Prometheus series. :meth:`DeploymentRouter.apply` opens the slots the plan
adds (load and warm in a worker thread, health check, smoke prediction; see
``serving_pool``), reuses the ones already open — so a standby version stays warm and a
rollback is instant — and swaps the new table in with one reference assignment. Slots no
plan references any more retire: they close once their last request has left, so no
request fails on a swap. If any backend fails, the slots opened for the plan are closed
and the error raised; the old table keeps serving.

A request (:meth:`DeploymentRouter.call`) reads the table once and enters its slot before
awaiting anything, so the slot it holds cannot close under it. The backend is the plan's
weighted choice of a uniform random point, or, when the plan has a ``sticky_key`` and the
request carries it, the consistent-hash choice of its value (a request without the key
falls back to the random choice). After a successful answer the request is mirrored to
the plan's shadow, bounded by ``shadow_concurrency`` mirrors at once (beyond that a mirror
is dropped and counted, never waited for), and the shadow's answer compared with the live
one (``serving_shadow``). Every loop-side method runs on one event loop (the server's);
:meth:`DeploymentRouter.stats` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from keel.deploy.serving_metrics import BackendMeter
from keel.deploy.serving_pool import ServiceFactory, Slot, open_slot, service_factory
from keel.deploy.serving_shadow import compare_outputs
from keel.deploy.serving_stats import BackendWindow
from keel.deploy.traffic import Backend, BackendStats, TrafficPlan
from keel.errors import InvalidInput, KeelError, NotFound, StoreUnavailable

if TYPE_CHECKING:
    import numpy as np

    from keel.monitoring.prediction_log import PredictionLogger
    from keel.serving.protocol import ModelMetadata
    from keel.serving.runtime import ModelRuntime, Prepared

__all__ = ["Answer", "CallTrace", "DeploymentRouter", "Prepare", "Route", "RoutingTable"]

# Checks a request against one version's runtime (raising InvalidInput, the caller's
# fault) and returns it prepared for that version's batcher.
Prepare = Callable[["ModelRuntime"], "Prepared"]
StickyOf = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Route:
    """One backend of a routing table: its slot, stats window and metrics."""

    backend: Backend
    slot: Slot
    window: BackendWindow
    meter: BackendMeter


@dataclass(frozen=True)
class RoutingTable:
    """A deployment's plan and a route for each of its backends; never changed once built."""

    plan: TrafficPlan
    routes: Mapping[str, Route]
    shadow: Route | None

    def pick(self, sticky_of: StickyOf | None = None) -> Route:
        """Return the route of the live backend this request goes to."""
        plan = self.plan
        if plan.sticky_key is not None and sticky_of is not None:
            value = sticky_of(plan.sticky_key)
            if value is not None:
                return self.routes[plan.choose_sticky(value).key]
        return self.routes[plan.choose(random.random()).key]


@dataclass(frozen=True)
class Answer:
    """A live answer: the backend that gave it, its runtime, the prepared input, outputs."""

    backend: Backend
    runtime: ModelRuntime
    prepared: Prepared
    results: dict[str, np.ndarray]


@dataclass
class CallTrace:
    """Filled in by :meth:`DeploymentRouter.call` as it goes: the backend chosen and its
    runtime, and the checked input — what a failed request's prediction-log row names."""

    backend: Backend | None = None
    runtime: ModelRuntime | None = None
    prepared: Prepared | None = None


class DeploymentRouter:
    """Applies traffic plans and routes requests to the versions they name (module doc).

    ``factory`` builds an unloaded ``ModelService`` for ``(model, version)`` (default: from
    the SDK's current stores); ``drain_timeout`` bounds how long a retired version waits
    for its last requests; ``smoke_timeout`` bounds the smoke prediction.
    """

    def __init__(
        self,
        *,
        factory: ServiceFactory | None = None,
        shadow_concurrency: int = 32,
        drain_timeout: float = 30.0,
        smoke_timeout: float = 30.0,
    ) -> None:
        if shadow_concurrency < 1 or drain_timeout <= 0 or smoke_timeout <= 0:
            raise InvalidInput("shadow_concurrency must be >= 1 and the timeouts > 0")
        self._factory = factory or service_factory()
        self._shadow_limit = shadow_concurrency
        self._drain_timeout = drain_timeout
        self._smoke_timeout = smoke_timeout
        self._tables: dict[str, RoutingTable] = {}
        self._lock = asyncio.Lock()
        self._mirrors = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # the data plane's prediction log (set by the server); closed with the router
        self.prediction_log: PredictionLogger | None = None

    # -- the control plane's side (TrafficApplier) ------------------------------------------

    async def apply(self, plan: TrafficPlan, *, reload: Collection[str] = ()) -> None:
        """Load, warm, check and smoke every backend of ``plan`` not loaded yet, then swap.

        ``reload`` names backends (``model/version``) to load afresh even though loaded
        (a server-side model reload): their new service takes the traffic, the old one
        closes once idle. Raises the failing backend's KeelError, the old plan serving on.
        """
        if not isinstance(plan, TrafficPlan):
            raise InvalidInput(f"apply takes a TrafficPlan, not {type(plan).__name__}")
        async with self._lock:
            await self._apply(plan, _keys(reload))

    async def _apply(self, plan: TrafficPlan, reload: set[str]) -> None:
        """``apply`` under the lock: one plan change at a time."""
        unknown = sorted(reload - {b.key for b in plan.all_backends()})
        if unknown:
            raise InvalidInput(f"cannot reload {unknown}: not backends of {plan.deployment!r}")
        if self._closed:
            raise StoreUnavailable("the deployment router is shut down")
        old = self._tables.get(plan.deployment)
        if old is not None and old.plan == plan and not reload:
            return
        before: Mapping[str, Route] = old.routes if old is not None else {}
        routes = await self._open_routes(plan, before, reload)
        for route in routes.values():
            route.meter.track(route.slot.service.batcher)
            route.meter.set_weight(route.backend)
        shadow = None if plan.shadow is None else routes[plan.shadow.key]
        table = RoutingTable(plan, MappingProxyType(routes), shadow)
        self._tables[plan.deployment] = table  # the atomic swap
        self._release(before, routes)

    async def _open_routes(
        self, plan: TrafficPlan, before: Mapping[str, Route], reload: set[str]
    ) -> dict[str, Route]:
        routes: dict[str, Route] = {}
        opened: list[Slot] = []
        try:
            for backend in plan.all_backends():
                prior = before.get(backend.key)
                if prior is not None and backend.key not in reload:
                    slot = prior.slot
                else:
                    slot = await open_slot(
                        plan.deployment, backend, self._factory, smoke_timeout=self._smoke_timeout
                    )
                    opened.append(slot)
                window = prior.window if prior is not None else BackendWindow(backend.key)
                meter = prior.meter if prior is not None else BackendMeter(plan.deployment, backend)
                routes[backend.key] = Route(backend, slot, window, meter)
        except BaseException:
            for slot in opened:  # none of them took traffic
                await slot.service.close()
            raise
        return routes

    def _release(self, before: Mapping[str, Route], after: Mapping[str, Route]) -> None:
        """Retire the slots of ``before`` that ``after`` no longer uses; drop gone series."""
        for key, route in before.items():
            kept = after.get(key)
            if kept is None or kept.slot is not route.slot:
                self._spawn(route.slot.retire(self._drain_timeout))
            if kept is None:
                route.meter.remove()

    async def reload(self, deployment: str, keys: Collection[str] | None = None) -> None:
        """Load ``keys`` (default: every backend) of a deployment afresh and swap them in.

        The deployment's plan at the time the reload runs is kept as it is.
        """
        async with self._lock:
            table = self.table(deployment)
            await self._apply(table.plan, set(table.routes) if keys is None else _keys(keys))

    async def remove(self, deployment: str) -> None:
        """Stop serving a deployment (no-op if not served); its versions close once their
        requests finish."""
        if not isinstance(deployment, str):
            raise InvalidInput(f"a deployment name is a string, not {type(deployment).__name__}")
        async with self._lock:
            table = self._tables.pop(deployment, None)
            if table is not None:
                self._release(table.routes, {})

    def stats(self, deployment: str, since: float) -> dict[str, BackendStats]:
        """Return each backend's figures from ``since`` (epoch seconds), keyed model/version.

        See ``keel.deploy.serving_stats`` for what counts as a request, an error and p99;
        a deployment not served here has no backends (``{}``).
        """
        if not isinstance(deployment, str):
            raise InvalidInput(f"a deployment name is a string, not {type(deployment).__name__}")
        table = self._tables.get(deployment)
        if table is None:
            return {}
        return {key: route.window.stats(since) for key, route in table.routes.items()}

    # -- the serving side -------------------------------------------------------------------

    def deployments(self) -> list[str]:
        """Return the names of the deployments served now."""
        return sorted(self._tables)

    def table(self, deployment: str) -> RoutingTable:
        """Return a deployment's current routing table; ``NotFound`` if it is not served."""
        table = self._tables.get(deployment) if isinstance(deployment, str) else None
        if table is None:
            raise NotFound(_unknown(deployment))
        return table

    def ready(self, deployment: str) -> bool:
        """Whether every live backend of a deployment is loaded; ``NotFound`` if unknown."""
        table = self.table(deployment)
        return all(table.routes[b.key].slot.service.server_ready() for b in table.plan.live)

    def metadata(self, deployment: str) -> ModelMetadata:
        """The protocol's model metadata of a deployment: named so, listing its live
        versions, with the inputs and outputs of its largest live backend."""
        table = self.table(deployment)
        live = table.plan.live
        main = max(live, key=lambda b: b.weight)
        found = table.routes[main.key].slot.runtime.metadata()
        return replace(found, name=deployment, versions=[str(b.version) for b in live])

    async def call(
        self,
        deployment: str,
        prepare: Prepare,
        *,
        sticky_of: StickyOf | None = None,
        trace: CallTrace | None = None,
    ) -> Answer:
        """Route one request, predict it through the chosen version's batcher, mirror it.

        Raises ``NotFound`` for an unknown deployment, the version's ``InvalidInput`` for
        input it refuses, ``Overloaded`` when its queue is full. ``trace``, when given,
        receives the chosen backend, its runtime and the prepared input as they are known.
        """
        if not callable(prepare) or not (sticky_of is None or callable(sticky_of)):
            raise InvalidInput("call takes prepare(runtime) and an optional sticky_of(key)")
        table = self.table(deployment)
        route = table.pick(sticky_of)
        slot = route.slot
        slot.enter()  # before any await: the slot cannot close while this request is in it
        shadow = self._start_mirror(table, route)
        started = time.perf_counter()
        try:
            runtime = slot.runtime
            if trace is not None:
                trace.backend, trace.runtime = route.backend, runtime
            try:
                prepared = prepare(runtime)
                if trace is not None:
                    trace.prepared = prepared
            except KeelError as exc:
                _count_failure(route, rejected=exc.http_status < 500)
                raise
            except Exception:
                _count_failure(route, rejected=False)
                raise
            try:
                results = await slot.service.batcher.submit(prepared)
            except asyncio.CancelledError:  # the caller went away: not the version's failure
                raise
            except BaseException:  # the model raised, the queue was full...: the version's
                _count_failure(route, rejected=False)
                raise
        except BaseException:
            if shadow is not None:
                self._end_mirror(shadow)
            raise
        finally:
            slot.leave()
        elapsed = time.perf_counter() - started
        route.window.success(elapsed * 1000)
        route.meter.success(elapsed)
        if shadow is not None:
            self._spawn(self._mirror(shadow, prepare, results))
        return Answer(route.backend, runtime, prepared, results)

    # -- shadow -----------------------------------------------------------------------------

    def _start_mirror(self, table: RoutingTable, live: Route) -> Route | None:
        """Reserve a mirror to the shadow (entering its slot now), or drop and count it."""
        shadow = table.shadow
        if shadow is None or shadow.backend.key == live.backend.key:
            return None
        if self._mirrors >= self._shadow_limit:
            shadow.window.add("dropped")
            shadow.meter.dropped.inc()
            return None
        self._mirrors += 1
        shadow.slot.enter()
        return shadow

    def _end_mirror(self, shadow: Route) -> None:
        shadow.slot.leave()
        self._mirrors -= 1

    async def _mirror(
        self, shadow: Route, prepare: Prepare, live: Mapping[str, np.ndarray]
    ) -> None:
        """Ask the shadow the live request; record its figures and its agreement."""
        started = time.perf_counter()
        window = shadow.window
        try:
            try:
                prepared = prepare(shadow.slot.runtime)
            except KeelError:
                # it cannot take what live answered: a rejection and no agreeing row
                window.rejected()
                shadow.meter.reject()
                _, rows = compare_outputs(live, {})
                _agreement(window, 0, rows)
                return
            try:
                results = await shadow.slot.service.batcher.submit(prepared)
            except Exception:  # noqa: BLE001 - a shadow's failure is a figure, never raised
                window.error()
                shadow.meter.error()
                return
            elapsed = time.perf_counter() - started
            window.success(elapsed * 1000)
            shadow.meter.success(elapsed)
            _agreement(window, *compare_outputs(live, results))
        finally:
            self._end_mirror(shadow)

    # -- lifecycle --------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        # kept referenced until done (the loop holds tasks weakly); close() awaits them
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop serving every deployment; wait for requests and mirrors inside to finish."""
        async with self._lock:
            self._closed = True
            tables, self._tables = self._tables, {}
            for table in tables.values():
                self._release(table.routes, {})
        while self._tasks:
            with contextlib.suppress(Exception):
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        log, self.prediction_log = self.prediction_log, None
        if log is not None:  # every request has left: flush what they recorded
            await asyncio.to_thread(log.close)


def _keys(keys: object) -> set[str]:
    """The backend keys of a ``reload`` argument: a collection of ``model/version`` strings."""
    if isinstance(keys, str) or not isinstance(keys, Collection):
        raise InvalidInput(
            f"reload takes a list of backend keys like ['churn/3'], not {keys!r:.80}"
        )
    if not all(isinstance(k, str) for k in keys):
        raise InvalidInput("reload takes backend keys as strings like 'churn/3'")
    return set(keys)


def _count_failure(route: Route, *, rejected: bool) -> None:
    """Count a failed request: ``rejected`` when the version's input checks refused it."""
    if rejected:
        route.window.rejected()
        route.meter.reject()
    else:
        route.window.error()
        route.meter.error()


def _agreement(window: BackendWindow, agreed: int, rows: int) -> None:
    """Record one compared request: it agrees when every one of its rows does."""
    window.add("compared")
    window.add("agreed", 1.0 if agreed == rows else 0.0)
    window.add("compared_rows", rows)
    window.add("agreed_rows", agreed)


def _unknown(deployment: object) -> str:
    shown = repr(deployment)
    if len(shown) > 130:  # a hostile name is not echoed whole
        shown = shown[:127] + "..."
    return f"deployment {shown} is not served here (no model version is deployed to it)"
