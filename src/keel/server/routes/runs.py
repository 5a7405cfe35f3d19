"""REST routes for runs under /api/v1: one endpoint per ``TrackingStore`` method.

Request bodies are capped (``MAX_JSON_BODY`` bytes, 413 beyond it) before they are
parsed; a metric batch holds at most ``MAX_BATCH_METRICS`` points (the REST client
splits larger ones).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from keel.errors import NotFound, PermissionDenied
from keel.governance.auth import Principal, Role
from keel.server.auth import (
    ANY_OBJECT,
    caller,
    experiment_in_body,
    experiment_of_run,
    require,
)
from keel.server.deps import get_stores
from keel.server.responses import JsonResponse
from keel.server.schemas.run_writes import RunWritesBody
from keel.server.schemas.tracking import (
    MAX_JSON_BODY,
    ArtifactsBody,
    BatchBody,
    ClaimBody,
    EndRunBody,
    FailStaleBody,
    HeartbeatBody,
    InputsBody,
    RunBody,
    SearchBody,
    clean_params,
    clean_tags,
    metric_rows,
)
from keel.stores import Stores
from keel.tracking.entities import RunStatus
from keel.tracking.run_writes import RunWrite
from keel.tracking.validation import check_id, check_key, check_name

__all__ = ["LimitedBodyRoute", "router"]


def _too_large() -> HTTPException:
    return HTTPException(
        413, f"request body is larger than {MAX_JSON_BODY} bytes; send smaller batches"
    )


class LimitedBodyRoute(APIRoute):
    """A route that refuses bodies over ``MAX_JSON_BODY`` bytes with 413 before parsing."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler, wrapped to read the body with a size cap first."""
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
                raise _too_large()
            if request.method in ("POST", "PUT", "PATCH"):
                chunks, size = [], 0
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_JSON_BODY:
                        raise _too_large()
                    chunks.append(chunk)
                request._body = b"".join(chunks)
            return await handler(request)

        return limited


router = APIRouter(tags=["runs"], route_class=LimitedBodyRoute)
_EDIT_RUN = [require(Role.EDITOR, on=experiment_of_run)]


def _run_id(run_id: str) -> str:
    return check_id("run", run_id)


@router.post("/runs", dependencies=[require(Role.EDITOR, on=experiment_in_body)])
def create_run(request: Request, body: RunBody, stores: Stores = Depends(get_stores)) -> Any:
    """Return the new running run (with auth on, its user is the caller)."""
    principal = caller(request)
    run = stores.tracking.create_run(
        check_id("experiment", body.experiment_id),
        name=check_name("run", body.name),
        user=body.user if principal is None else principal.user,
        start_time=body.start_time,
        source=body.source,
        git_commit=body.git_commit,
        git_dirty=body.git_dirty,
        parent_run_id=None if body.parent_run_id is None else _run_id(body.parent_run_id),
        tags=clean_tags(body.tags),
        writer=body.writer,
    )
    return run.to_dict()


@router.post("/runs/search")
def search_runs(body: SearchBody, stores: Stores = Depends(get_stores)) -> Any:
    """Return ``{"runs": [...], "next_page_token": ...}``: one page of matching runs."""
    as_json = getattr(stores.tracking, "search_runs_json", None)
    if as_json is not None:  # the SQL store builds the body itself (see sql_rows)
        content = as_json(
            body.checked_ids(stores.tracking),
            filter=body.filter,
            order_by=body.order_by,
            max_results=body.max_results,
            page_token=body.page_token,
        )
        return Response(content, media_type="application/json")
    page = stores.tracking.search_runs(
        body.checked_ids(stores.tracking),
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
    )
    # Rendered here: FastAPI would first walk the page (some 20,000 values) through
    # pydantic's encoder, which costs more than the database query.
    found = {"runs": [r.to_dict() for r in page], "next_page_token": page.next_page_token}
    return JsonResponse(found)


@router.post("/runs/write", status_code=204, dependencies=[require(Role.EDITOR, on=ANY_OBJECT)])
def write_runs(
    request: Request, body: RunWritesBody, stores: Stores = Depends(get_stores)
) -> Response:
    """Return 204 after writing the runs in one transaction (with auth on, a created run's
    user is the caller, who needs the editor role on every experiment written to)."""
    principal = caller(request)
    writes = body.to_writes(None if principal is None else principal.user)
    if principal is not None and principal.role < Role.EDITOR:
        _require_editor_on_each(principal, writes, stores)
    stores.tracking.write_runs(writes)
    return Response(status_code=204)


def _require_editor_on_each(principal: Principal, writes: list[RunWrite], stores: Stores) -> None:
    # A creating write names its experiment (a run of that id elsewhere is a Conflict in the
    # store); any other write acts on the experiment its run is in.
    for write in writes:
        experiment_id = write.experiment_id
        if experiment_id is None:
            try:
                experiment_id = stores.tracking.get_run(write.run_id).experiment_id
            except NotFound:
                continue  # the store refuses the batch: no such run
        if principal.role_on("experiment", experiment_id) < Role.EDITOR:
            raise PermissionDenied(
                f"{principal.user} may not write run {write.run_id}: it needs the editor role "
                f"on experiment {experiment_id!r}; an admin can grant it with "
                "`keel auth role grant`"
            )


@router.post("/runs/fail-stale", dependencies=[require(Role.EDITOR)])
def fail_stale_runs(body: FailStaleBody, stores: Stores = Depends(get_stores)) -> Any:
    """Return ``{"run_ids": [...]}``: the runs just marked failed for a missed heartbeat."""
    return {"run_ids": stores.tracking.fail_stale_runs(body.now, body.timeout_ms)}


@router.get("/runs/{run_id}")
def get_run(run_id: str, stores: Stores = Depends(get_stores)) -> Any:
    """Return the run with its params, tags and latest metrics."""
    return stores.tracking.get_run(_run_id(run_id)).to_dict()


@router.delete("/runs/{run_id}", status_code=204, dependencies=_EDIT_RUN)
def delete_run(run_id: str, stores: Stores = Depends(get_stores)) -> Response:
    """Return 204 after marking the run deleted."""
    stores.tracking.delete_run(_run_id(run_id))
    return Response(status_code=204)


@router.post("/runs/{run_id}/end", dependencies=_EDIT_RUN)
def end_run(run_id: str, body: EndRunBody, stores: Stores = Depends(get_stores)) -> Any:
    """Return the run with its final status and end time."""
    status = RunStatus.parse(body.status)
    return stores.tracking.end_run(_run_id(run_id), status, body.end_time).to_dict()


@router.post("/runs/{run_id}/claim", dependencies=_EDIT_RUN)
def claim_run(run_id: str, body: ClaimBody, stores: Stores = Depends(get_stores)) -> Any:
    """Return the run now written by ``writer``; 409 if another live writer holds it."""
    run = stores.tracking.claim_run(_run_id(run_id), body.writer, body.now, body.timeout_ms)
    return run.to_dict()


@router.post("/runs/{run_id}/heartbeat", status_code=204, dependencies=_EDIT_RUN)
def heartbeat(run_id: str, body: HeartbeatBody, stores: Stores = Depends(get_stores)) -> Response:
    """Return 204 after recording the writer's heartbeat."""
    stores.tracking.heartbeat(_run_id(run_id), body.writer, body.now)
    return Response(status_code=204)


@router.post("/runs/{run_id}/batch", status_code=204, dependencies=_EDIT_RUN)
def log_batch(run_id: str, body: BatchBody, stores: Stores = Depends(get_stores)) -> Response:
    """Return 204 after writing the metrics, params and tags in one transaction."""
    stores.tracking.log_batch(
        _run_id(run_id),
        metrics=metric_rows(body.metrics),
        params=clean_params(body.params),
        tags=clean_tags(body.tags),
    )
    return Response(status_code=204)


@router.get("/runs/{run_id}/metric-history")
def get_metric_history(
    run_id: str, key: str = Query(max_length=1024), stores: Stores = Depends(get_stores)
) -> Any:
    """Return ``{"metrics": [...]}``: every point of one metric, by step then timestamp."""
    history = stores.tracking.get_metric_history(_run_id(run_id), check_key("metric", key))
    return {"metrics": [m.to_dict() for m in history]}


@router.post("/runs/{run_id}/inputs", status_code=204, dependencies=_EDIT_RUN)
def log_inputs(run_id: str, body: InputsBody, stores: Stores = Depends(get_stores)) -> Response:
    """Return 204 after recording the datasets the run consumed."""
    stores.tracking.log_inputs(_run_id(run_id), [i.to_entity() for i in body.inputs])
    return Response(status_code=204)


@router.get("/runs/{run_id}/inputs")
def get_inputs(run_id: str, stores: Stores = Depends(get_stores)) -> Any:
    """Return ``{"inputs": [...]}``: the datasets the run consumed."""
    return {"inputs": [i.to_dict() for i in stores.tracking.get_inputs(_run_id(run_id))]}


@router.post("/runs/{run_id}/artifacts", status_code=204, dependencies=_EDIT_RUN)
def add_artifacts(
    run_id: str, body: ArtifactsBody, stores: Stores = Depends(get_stores)
) -> Response:
    """Return 204 after indexing the run's artifact files."""
    stores.tracking.add_artifacts(_run_id(run_id), [e.to_entity() for e in body.entries])
    return Response(status_code=204)


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(
    run_id: str,
    prefix: str | None = Query(default=None, max_length=4096),
    stores: Stores = Depends(get_stores),
) -> Any:
    """Return ``{"artifacts": [...]}``: the run's files under ``prefix``, by path."""
    from keel.tracking.fluent import clean_artifact_path

    clean = clean_artifact_path(prefix) if prefix else None
    entries = stores.tracking.list_artifacts(_run_id(run_id), clean or None)
    return {"artifacts": [e.to_dict() for e in entries]}


@router.get("/runs/{run_id}/snapshot")
def get_run_snapshot(
    run_id: str,
    prefix: str | None = Query(default=None, max_length=4096),
    stores: Stores = Depends(get_stores),
) -> Any:
    """Return ``{"run": …, "inputs": [...], "artifacts": [...]}`` (files under ``prefix``)."""
    from keel.tracking.fluent import clean_artifact_path

    clean = clean_artifact_path(prefix) if prefix else None
    return stores.tracking.get_run_snapshot(_run_id(run_id), clean or None).to_dict()
