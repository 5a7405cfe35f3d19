"""REST routes of deployments under /api/v1/deployments: one endpoint per operation.

Reads go to the server's deployments store. Changes go through the server's
``DeploymentController`` (``app.state.deploy_controller``, set by the server's data
plane at start-up), so each change is persisted and then applied to the serving data
plane before the answer; without a data plane a controller with no applier is made, and
changes are persisted only (a controller with one applies them on its next tick).
Viewers read; editors change. ``POST …/{name}/reload`` loads a served deployment's
versions afresh on the server's data plane (``app.state.deployment_router``): fresh
services are loaded and warmed, swapped in, and the old ones drained, failing no request.
"""

from __future__ import annotations

import asyncio
import math
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from keel.deploy.controller import DeploymentController
from keel.deploy.entities import Outcome
from keel.deploy.store import DEFAULT_HISTORY, MAX_HISTORY, DeploymentStore
from keel.errors import Conflict, InvalidInput
from keel.governance.auth import Role
from keel.governance.identity import acting_as
from keel.server.auth import require
from keel.server.deps import get_stores
from keel.server.schemas.deployments import (
    AnalysisOut,
    DeploymentIn,
    DeploymentListOut,
    DeploymentOut,
    HistoryOut,
    OutcomesIn,
    OutcomesOut,
    ReloadOut,
    RolloutIn,
    StatsOut,
    TargetIn,
    TrafficIn,
)
from keel.stores import Stores

__all__ = ["controller_of", "router"]

router = APIRouter(tags=["deployments"])
_EDIT = [require(Role.EDITOR)]

Name = Annotated[str, Path(min_length=1, max_length=128, description="deployment name")]
ACTOR_HEADER = "keel-actor"


def _acting(request: Request) -> AbstractContextManager[object]:
    """Return the context a change runs in: as the ``Keel-Actor`` the client names when
    auth is off (the SDK sends its user, as the registry's ``actor`` field does); with auth
    on, the token's user already acts and the header is ignored."""
    claimed = request.headers.get(ACTOR_HEADER)
    if request.app.state.auth or claimed is None:
        return nullcontext()
    return acting_as(claimed)  # InvalidInput (400) if empty or too long


def _store(stores: Stores = Depends(get_stores)) -> DeploymentStore:
    return stores.deployments


Store = Annotated[DeploymentStore, Depends(_store)]


def controller_of(request: Request) -> DeploymentController:
    """Return the server's deployment controller (one without a data plane if none is set)."""
    state = request.app.state
    controller = getattr(state, "deploy_controller", None)
    if controller is None:
        controller = state.deploy_controller = DeploymentController(state.stores.deployments)
    return controller


Controller = Annotated[DeploymentController, Depends(controller_of)]


@router.post("/deployments", status_code=201, response_model=DeploymentOut, dependencies=_EDIT)
async def create_deployment(
    body: DeploymentIn, controller: Controller, request: Request
) -> dict[str, Any]:
    """Return a new deployment sending all traffic to ``model``; 409 if the name is taken."""
    with _acting(request):
        dep = await controller.create(
            body.name, body.model, environment=body.environment, description=body.description
        )
    return dep.to_dict()


@router.get("/deployments", response_model=DeploymentListOut)
def list_deployments(
    store: Store,
    environment: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    """Return every deployment (of one environment if given), by name."""
    return {"deployments": [d.to_dict() for d in store.list_deployments(environment=environment)]}


@router.get("/deployments/{name}", response_model=DeploymentOut)
def get_deployment(name: Name, store: Store) -> dict[str, Any]:
    """Return one deployment; 404 if there is none by that name."""
    return store.get_deployment(name).to_dict()


@router.delete("/deployments/{name}", status_code=204, response_class=Response, dependencies=_EDIT)
async def delete_deployment(name: Name, controller: Controller, request: Request) -> Response:
    """Delete a deployment (history and outcomes with it) and stop serving it; answer 204."""
    with _acting(request):
        await controller.delete(name)
    return Response(status_code=204)


@router.get("/deployments/{name}/history", response_model=HistoryOut)
def deployment_history(
    name: Name,
    store: Store,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = DEFAULT_HISTORY,
) -> dict[str, Any]:
    """Return the latest ``limit`` traffic changes, oldest first."""
    return {"history": [h.to_dict() for h in store.deployment_history(name, limit=limit)]}


@router.get("/deployments/{name}/stats", response_model=StatsOut)
async def deployment_stats(name: Name, controller: Controller) -> dict[str, Any]:
    """Return the data plane's live figures per version since the rollout's step began."""
    dep, stats = await controller.live(name)
    since = None if dep.rollout is None else dep.rollout.step_started_at / 1000
    backends = []
    for s in stats.values():
        extra = {k: float(v) for k, v in s.extra.items() if math.isfinite(v)}
        backends.append(
            {
                "backend": s.backend,
                "requests": s.requests,
                "errors": s.errors,
                "error_rate": s.error_rate,
                "p99_ms": s.p99_ms,
                "extra": extra,
            }
        )
    return {
        "deployment": dep.name,
        "since": since,
        "serving_revision": controller.applied_revision(name),
        "backends": backends,
    }


@router.post("/deployments/{name}/rollouts", response_model=DeploymentOut, dependencies=_EDIT)
async def start_rollout(
    name: Name, body: RolloutIn, controller: Controller, request: Request
) -> dict[str, Any]:
    """Return the deployment with a rollout of ``model`` by ``strategy`` started (409 if
    one is running)."""
    with _acting(request):
        dep = await controller.deploy(name, body.model, strategy=body.strategy, config=body.config)
    return dep.to_dict()


@router.put("/deployments/{name}/traffic", response_model=DeploymentOut, dependencies=_EDIT)
async def set_traffic(
    name: Name, body: TrafficIn, controller: Controller, request: Request
) -> dict[str, Any]:
    """Return the deployment after a manual split (percentages summing to 100)."""
    with _acting(request):
        return (await controller.set_traffic(name, body.weights)).to_dict()


@router.post("/deployments/{name}/promote", response_model=DeploymentOut, dependencies=_EDIT)
async def promote(
    name: Name, controller: Controller, request: Request, body: TargetIn | None = None
) -> dict[str, Any]:
    """Return the deployment after promoting its candidate (or ``to``, an A/B variant)."""
    with _acting(request):
        return (await controller.promote(name, to=body.to if body else None)).to_dict()


@router.post("/deployments/{name}/rollback", response_model=DeploymentOut, dependencies=_EDIT)
async def rollback(
    name: Name, controller: Controller, request: Request, body: TargetIn | None = None
) -> dict[str, Any]:
    """Return the deployment after rolling back to the previous version (or ``to``)."""
    with _acting(request):
        return (await controller.rollback(name, to=body.to if body else None)).to_dict()


@router.post("/deployments/{name}/abort", response_model=DeploymentOut, dependencies=_EDIT)
async def abort(name: Name, controller: Controller, request: Request) -> dict[str, Any]:
    """Return the deployment after stopping its running rollout; 409 if none runs."""
    with _acting(request):
        return (await controller.abort(name)).to_dict()


@router.post("/deployments/{name}/pause", response_model=DeploymentOut, dependencies=_EDIT)
async def pause(name: Name, controller: Controller, request: Request) -> dict[str, Any]:
    """Return the deployment with its running canary held at its step; 409 if none runs."""
    with _acting(request):
        return (await controller.pause_rollout(name)).to_dict()


@router.post("/deployments/{name}/resume", response_model=DeploymentOut, dependencies=_EDIT)
async def resume(name: Name, controller: Controller, request: Request) -> dict[str, Any]:
    """Return the deployment with its paused canary going on; 409 if it is not paused."""
    with _acting(request):
        return (await controller.resume_rollout(name)).to_dict()


@router.post("/deployments/{name}/reload", response_model=ReloadOut, dependencies=_EDIT)
async def reload(name: Name, store: Store, request: Request) -> dict[str, Any]:
    """Return the versions reloaded: each of the deployment's loaded versions is loaded
    and warmed afresh, swapped in, and the old service drained (no request fails); 404 if
    there is no such deployment, 409 if this server's data plane does not serve it."""
    await asyncio.to_thread(store.get_deployment, name)  # NotFound (404)
    router = getattr(request.app.state, "deployment_router", None)
    record = getattr(store, "record_reload", None)
    if router is None or record is None or name not in router.deployments():
        raise Conflict(
            f"deployment {name!r} is not being served by this server's data plane, so "
            "there is nothing to reload; a server on the metadata database serves it once "
            "its versions load (see `keel deploy show`)"
        )
    keys = sorted(router.table(name).routes)
    await router.reload(name)
    with _acting(request):
        await asyncio.to_thread(record, name, keys)
    return {"deployment": name, "reloaded": keys}


@router.post("/deployments/{name}/outcomes", response_model=OutcomesOut, dependencies=_EDIT)
def record_outcomes(name: Name, body: OutcomesIn, store: Store) -> dict[str, int]:
    """Return how many outcomes of the running A/B test were recorded."""
    outcomes = []
    for o in body.outcomes:
        if not math.isfinite(o.value):
            raise InvalidInput(f"an outcome value is a finite number, not {o.value!r}")
        outcomes.append(Outcome(value=o.value, variant=o.variant, request_key=o.request_key))
    return {"recorded": store.record_outcomes(name, outcomes)}


@router.get("/deployments/{name}/analysis", response_model=AnalysisOut)
def ab_analysis(name: Name, store: Store) -> dict[str, Any]:
    """Return the significance analysis of the deployment's latest A/B test."""
    return store.ab_analysis(name).to_dict()
