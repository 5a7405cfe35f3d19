"""UI pages: the pipelines that have run, one pipeline's runs, and one pipeline run drawn
as its DAG coloured by status, with the chosen step's logs, output, params and error."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.errors import InvalidInput, KeelError, NotFound
from keel.pipelines.entities import PipelineRunInfo, StepRunInfo
from keel.pipelines.records import LOG_FILE, list_pipeline_runs, list_pipelines, read_run
from keel.server.deps import get_stores
from keel.server.ui.pipeline_dag import layout_dag
from keel.server.ui.render import UiRoute, page, page_id
from keel.server.ui.session import require_login
from keel.stores import Stores

__all__ = ["router"]

router = APIRouter(
    route_class=UiRoute, include_in_schema=False, dependencies=[Depends(require_login)]
)

RUNS_SHOWN = 200
LOG_TAIL_BYTES = 64 * 1024  # the end of a long log is what explains a failure
PREVIEW_BYTES = 16 * 1024
MAX_NAME = 256


@router.get("/pipelines")
def pipelines(request: Request, stores: Stores = Depends(get_stores)) -> Response:
    """Every pipeline that has run, with its run count and latest run."""
    return page(request, "pipelines.html", rows=list_pipelines(stores))


@router.get("/pipelines/{name}")
def pipeline(request: Request, name: str, stores: Stores = Depends(get_stores)) -> Response:
    """One pipeline's runs, newest first."""
    if not name or len(name) > MAX_NAME:
        raise NotFound(f"no pipeline named {name[:80]!r}")
    runs = list_pipeline_runs(stores, name, max_results=RUNS_SHOWN)
    return page(request, "pipeline.html", name=name, runs=runs, limit=RUNS_SHOWN)


@router.get("/pipeline-runs/{run_id}")
def pipeline_run(
    request: Request,
    run_id: str,
    step: str | None = Query(None, max_length=MAX_NAME),
    stores: Stores = Depends(get_stores),
) -> Response:
    """A pipeline run: its DAG coloured by status, its steps, and one step in detail."""
    run_id = page_id("run", run_id)
    try:
        run = read_run(stores, run_id)
    except InvalidInput as exc:  # a run, but not a pipeline run: nothing to draw
        raise NotFound(exc.message) from None
    chosen = _chosen_step(run, step)
    return page(
        request,
        "pipeline_run.html",
        run=run,
        counts=run.counts(),
        dag=layout_dag(run.steps),
        chosen=chosen,
        detail=None if chosen is None else _step_detail(stores, chosen),
    )


def _chosen_step(run: PipelineRunInfo, node: str | None) -> StepRunInfo | None:
    if node is None:  # the first failed step is what a person opens the page for
        failed = [s for s in run.steps if s.status == "failed"]
        return failed[0] if failed else (run.steps[-1] if run.steps else None)
    try:
        return run.step(node)
    except NotFound:
        raise NotFound(f"pipeline run {run.run_id} has no step {node[:80]!r}") from None


def _step_detail(stores: Stores, step: StepRunInfo) -> dict[str, Any]:
    logs, truncated = _logs(stores, step.run_id)
    return {
        "logs": logs,
        "logs_truncated": truncated,
        "output": None if step.output is None else step.output.to_dict(),
        "preview": _preview(stores, step),
    }


def _logs(stores: Stores, run_id: str) -> tuple[str | None, bool]:
    entry = next((e for e in stores.tracking.list_artifacts(run_id) if e.path == LOG_FILE), None)
    if entry is None:
        return None, False
    data = stores.artifacts.read_bytes(entry.digest, name=f"{run_id}/{LOG_FILE}")
    truncated = len(data) > LOG_TAIL_BYTES
    return data[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace"), truncated


def _preview(stores: Stores, step: StepRunInfo) -> str | None:
    """A JSON output's text (bounded); other kinds are described by their metadata."""
    ref = step.output
    if ref is None or ref.kind != "json" or ref.size > PREVIEW_BYTES:
        return None
    try:
        value = orjson.loads(stores.artifacts.read_bytes(ref.digest, name=step.node))
    except (KeelError, orjson.JSONDecodeError) as exc:
        return f"(the stored output could not be read: {getattr(exc, 'message', exc)})"
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
