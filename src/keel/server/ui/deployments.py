"""UI pages: the deployments (name, environment, strategy, live split, status), and one
deployment with its versions, split, rollout progress, A/B analysis, shadow and history."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.deploy.entities import Strategy, check_deployment_name, check_environment
from keel.errors import InvalidInput, KeelError, NotFound
from keel.server.deps import get_stores
from keel.server.ui import deployment_view as view
from keel.server.ui.render import UiRoute, page
from keel.server.ui.session import require_login
from keel.stores import Stores

__all__ = ["router"]

router = APIRouter(
    route_class=UiRoute, include_in_schema=False, dependencies=[Depends(require_login)]
)

HISTORY_ROWS = 100


@router.get("/deployments")
def deployments(
    request: Request,
    environment: str | None = Query(None, max_length=64),
    stores: Stores = Depends(get_stores),
) -> Response:
    """Every deployment (of one environment with ``?environment=``)."""
    environment = check_environment(environment) if environment else None
    found = stores.deployments.list_deployments(environment=environment)
    return page(
        request,
        "deployments.html",
        rows=[view.list_row(d) for d in found],
        environment=environment,
    )


@router.get("/deployments/{name}")
def deployment(request: Request, name: str, stores: Stores = Depends(get_stores)) -> Response:
    """One deployment: versions, live split, rollout, A/B analysis, shadow, history."""
    try:
        name = check_deployment_name(name)
    except InvalidInput:
        raise NotFound(f"no deployment named {name[:80]!r}") from None
    store = stores.deployments
    dep = store.get_deployment(name)
    figures = view.live_figures(request.app.state, dep.name)
    rollout = dep.rollout
    analysis = None
    if rollout is not None and rollout.strategy is Strategy.AB:
        try:
            analysis = store.ab_analysis(dep.name)
        except KeelError as exc:  # e.g. a test with no outcomes: the page says why
            analysis = exc.message
    now_ms = int(time.time() * 1000)
    return page(
        request,
        "deployment.html",
        dep=dep,
        split=view.split_segments(dep.plan),
        versions=view.version_rows(dep.plan, figures),
        live=figures is not None,
        live_window_s=view.LIVE_WINDOW_S,
        rollout=view.rollout_view(rollout, now_ms),
        analysis=analysis,
        shadow=view.shadow_view(dep.plan, rollout, figures),
        history=view.history_rows(store.deployment_history(dep.name, limit=HISTORY_ROWS)),
        history_limit=HISTORY_ROWS,
        now_ms=now_ms,
    )
