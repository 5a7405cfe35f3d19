"""REST routes of pipeline schedules and triggers under /api/v1/pipelines: one per operation.

Viewers read; editors change (every change audited by the store). ``POST
/pipelines/triggers/{name}/fire`` starts a webhook trigger's run: the caller proves it
may with the trigger's token in the ``Keel-Trigger-Token`` header (compared in constant
time with the stored digest); with auth on it also needs an editor's API token.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from keel.errors import Conflict, Unauthenticated
from keel.governance.auth import Role
from keel.governance.identity import acting_as
from keel.pipelines.schedule_store import MAX_DISPATCHES, ScheduleStore, new_schedule, new_trigger
from keel.pipelines.schedules import WEBHOOK_HEADER
from keel.server.auth import require
from keel.server.deps import get_stores
from keel.server.schemas.pipelines import (
    DispatchListOut,
    FiredOut,
    FireIn,
    ScheduleIn,
    ScheduleListOut,
    ScheduleOut,
    TriggerIn,
    TriggerListOut,
    TriggerOut,
)
from keel.stores import Stores

__all__ = ["WEBHOOK_HEADER", "router"]

router = APIRouter(tags=["pipelines"])
_EDIT = [require(Role.EDITOR)]
# A schedule or trigger names code that this server will run as itself: with auth on,
# saying which code is an admin's call (an editor may pause, resume and delete them).
_ADMIN = [require(Role.ADMIN)]
_BASE = "/pipelines"

Name = Annotated[str, Path(min_length=1, max_length=128, description="schedule or trigger name")]


def _acting(request: Request) -> AbstractContextManager[object]:
    # As in the deployments routes: the client's Keel-Actor when auth is off.
    claimed = request.headers.get("keel-actor")
    if request.app.state.auth or claimed is None:
        return nullcontext()
    return acting_as(claimed)


def _store(stores: Stores = Depends(get_stores)) -> ScheduleStore:
    return stores.pipeline_schedules


Store = Annotated[ScheduleStore, Depends(_store)]


@router.post(f"{_BASE}/schedules", status_code=201, response_model=ScheduleOut, dependencies=_ADMIN)
def create_schedule(body: ScheduleIn, store: Store, request: Request) -> dict[str, Any]:
    """Return a new schedule (or the replaced one, with ``replace``); 409 if the name is taken."""
    fields = body.model_dump(exclude={"name", "pipeline", "cron", "replace"})
    schedule = new_schedule(body.name, body.pipeline, body.cron, **fields)
    with _acting(request):
        return store.create_schedule(schedule, replace=body.replace).to_dict()


@router.get(f"{_BASE}/schedules", response_model=ScheduleListOut)
def list_schedules(store: Store) -> dict[str, Any]:
    """Return every schedule, by name."""
    return {"schedules": [s.to_dict() for s in store.list_schedules()]}


@router.get(f"{_BASE}/schedules/{{name}}", response_model=ScheduleOut)
def get_schedule(name: Name, store: Store) -> dict[str, Any]:
    """Return one schedule; 404 if there is none by that name."""
    return store.get_schedule(name).to_dict()


@router.post(f"{_BASE}/schedules/{{name}}/pause", response_model=ScheduleOut, dependencies=_EDIT)
def pause_schedule(name: Name, store: Store, request: Request) -> dict[str, Any]:
    """Return the schedule paused: it starts no run until resumed."""
    with _acting(request):
        return store.set_schedule_enabled(name, False).to_dict()


@router.post(f"{_BASE}/schedules/{{name}}/resume", response_model=ScheduleOut, dependencies=_EDIT)
def resume_schedule(name: Name, store: Store, request: Request) -> dict[str, Any]:
    """Return the schedule resumed, its next run planned from now."""
    with _acting(request):
        return store.set_schedule_enabled(name, True).to_dict()


@router.delete(
    f"{_BASE}/schedules/{{name}}", status_code=204, response_class=Response, dependencies=_EDIT
)
def delete_schedule(name: Name, store: Store, request: Request) -> Response:
    """Delete a schedule (a run it started goes on); answer 204."""
    with _acting(request):
        store.delete_schedule(name)
    return Response(status_code=204)


@router.post(f"{_BASE}/triggers", status_code=201, response_model=TriggerOut, dependencies=_ADMIN)
def create_trigger(body: TriggerIn, store: Store, request: Request) -> dict[str, Any]:
    """Return a new trigger; a webhook's answer carries its token, shown only this once."""
    fields = body.model_dump(exclude={"name", "pipeline", "kind", "subject"})
    trigger = new_trigger(body.name, body.pipeline, body.kind, body.subject, **fields)
    with _acting(request):
        return store.create_trigger(trigger).to_dict()


@router.get(f"{_BASE}/triggers", response_model=TriggerListOut)
def list_triggers(
    store: Store, kind: Annotated[str | None, Query(min_length=1, max_length=16)] = None
) -> dict[str, Any]:
    """Return every trigger (of one kind if given), by name; never a token."""
    return {"triggers": [t.to_dict() for t in store.list_triggers(kind=kind)]}


@router.get(f"{_BASE}/triggers/{{name}}", response_model=TriggerOut)
def get_trigger(name: Name, store: Store) -> dict[str, Any]:
    """Return one trigger; 404 if there is none by that name."""
    return store.get_trigger(name).to_dict()


@router.delete(
    f"{_BASE}/triggers/{{name}}", status_code=204, response_class=Response, dependencies=_EDIT
)
def delete_trigger(name: Name, store: Store, request: Request) -> Response:
    """Delete a trigger; answer 204."""
    with _acting(request):
        store.delete_trigger(name)
    return Response(status_code=204)


@router.post(
    f"{_BASE}/triggers/{{name}}/fire",
    status_code=202,
    response_model=FiredOut,
    dependencies=_EDIT,
)
async def fire_webhook(
    name: Name,
    store: Store,
    request: Request,
    body: FireIn | None = None,
    token: Annotated[str | None, Header(alias=WEBHOOK_HEADER, max_length=512)] = None,
) -> dict[str, Any]:
    """Start webhook trigger ``name``'s run with ``payload`` (its fields fill ``{field}`` in
    the params); 401 without its token in ``Keel-Trigger-Token``, 404 if no such webhook."""
    from keel.pipelines.triggers import fire_trigger

    matches = getattr(store, "webhook_matches", None)
    if matches is None:
        raise Conflict("this server keeps no triggers of its own (its store is another server)")
    if not token:
        raise Unauthenticated(
            f"calling webhook trigger {name!r} needs its token in {WEBHOOK_HEADER}"
        )
    if not await run_in_threadpool(matches, name, token):
        raise Unauthenticated(f"wrong token for webhook trigger {name!r}")
    payload = {} if body is None else dict(body.payload)
    stores = request.app.state.stores
    started = await run_in_threadpool(fire_trigger, stores, "webhook", name, payload)
    return {"dispatches": started}


@router.get(f"{_BASE}/dispatches", response_model=DispatchListOut)
def list_dispatches(
    store: Store,
    source: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DISPATCHES)] = 100,
) -> dict[str, Any]:
    """Return the runs schedules and triggers started, newest first."""
    found = store.list_dispatches(source=source, name=name, limit=limit)
    return {"dispatches": [d.to_dict() for d in found]}
