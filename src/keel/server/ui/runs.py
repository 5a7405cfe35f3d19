"""UI pages: a run (params, metric charts, tags, artifacts, dataset inputs), an artifact
download, and the comparison of selected runs (overlaid charts, differences marked)."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.errors import InvalidInput, NotFound
from keel.server.deps import get_stores
from keel.server.routes.blobs import get_blob
from keel.server.ui.charts import MISSING_NOTE, plotly_url
from keel.server.ui.render import UiRoute, page, page_id
from keel.server.ui.session import require_login
from keel.stores import Stores
from keel.tracking.entities import Run

__all__ = ["MAX_CHARTS", "MAX_COMPARED", "router"]

router = APIRouter(
    route_class=UiRoute, include_in_schema=False, dependencies=[Depends(require_login)]
)

MAX_CHARTS = 12
MAX_EXAMINED = 48
MAX_COMPARED = 10


def _label(run: Run) -> str:
    return f"{run.name} ({run.run_id[:8]})"


def _history(stores: Stores, run_id: str, key: str) -> dict[str, list[Any]]:
    points = stores.tracking.get_metric_history(run_id, key)
    return {"x": [p.step for p in points], "y": [p.value for p in points]}


def _charts(
    stores: Stores, runs: list[Run], keys: list[str], label: Any
) -> tuple[list[dict[str, Any]], bool]:
    """Return charts of the first ``MAX_CHARTS`` of ``keys`` that some run logged at more
    than one step (a single point is read better in the table), and whether keys were left
    unexamined (at most ``MAX_EXAMINED`` histories are read for one page)."""
    charts: list[dict[str, Any]] = []
    for key in keys[:MAX_EXAMINED]:
        if len(charts) == MAX_CHARTS:
            break
        traces = [
            {"name": label(run, key), **_history(stores, run.run_id, key)}
            for run in runs
            if key in run.metrics
        ]
        if any(len(t["x"]) > 1 for t in traces):
            charts.append({"id": f"chart-{len(charts)}", "title": key, "traces": traces})
    return charts, len(keys) > MAX_EXAMINED or len(charts) == MAX_CHARTS


def _chart_page_context(charts: list[dict[str, Any]], truncated: bool) -> dict[str, Any]:
    return {
        "charts": charts,
        "plotly_url": plotly_url(),
        "charts_note": MISSING_NOTE,
        "charts_truncated": truncated,
    }


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, stores: Stores = Depends(get_stores)) -> Response:
    """A run: what it is, its params, metric charts over steps, tags, artifacts, inputs."""
    run = stores.tracking.get_run(page_id("run", run_id))
    experiment = stores.tracking.get_experiment(run.experiment_id)
    charts, truncated = _charts(stores, [run], sorted(run.metrics), lambda _, key: key)
    return page(
        request,
        "run.html",
        run=run,
        experiment=experiment,
        artifacts=stores.tracking.list_artifacts(run.run_id),
        inputs=stores.tracking.get_inputs(run.run_id),
        **_chart_page_context(charts, truncated),
    )


@router.get("/runs/{run_id}/artifacts/{path:path}")
def download_artifact(run_id: str, path: str, stores: Stores = Depends(get_stores)) -> Response:
    """Download one artifact file of a run, under its own file name."""
    run_id = page_id("run", run_id)
    entry = next((e for e in stores.tracking.list_artifacts(run_id, path) if e.path == path), None)
    if entry is None:
        raise NotFound(f"run {run_id} has no artifact {path[:200]!r}")
    response = get_blob(entry.digest, stores)
    name = entry.path.rsplit("/", 1)[-1]
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return response


def _rows(runs: list[Run], kind: str) -> list[dict[str, Any]]:
    keys = sorted({k for run in runs for k in getattr(run, kind)})
    rows = []
    for key in keys:
        values = [getattr(run, kind).get(key) for run in runs]
        distinct = {repr(v) for v in values}  # repr: NaN equals NaN here
        rows.append({"key": key, "values": values, "differs": len(distinct) > 1})
    return rows


@router.get("/compare")
def compare(
    request: Request,
    run: list[str] = Query(default=[], max_length=MAX_COMPARED * 4),
    stores: Stores = Depends(get_stores),
) -> Response:
    """Selected runs side by side: params and metrics with differences marked, and
    each metric's history of every run overlaid in one chart."""
    ids = list(dict.fromkeys(run))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(
            f"select from 2 to {MAX_COMPARED} runs to compare ({len(ids)} selected); "
            "tick them in an experiment's runs table"
        )
    runs = [stores.tracking.get_run(page_id("run", run_id)) for run_id in ids]
    # The metrics most of the runs have come first: those are the ones to overlay.
    counts = Counter(k for r in runs for k in r.metrics)
    keys = sorted(counts, key=lambda k: (-counts[k], k))
    charts, truncated = _charts(stores, runs, keys, lambda run, _: _label(run))
    params = _rows(runs, "params")
    return page(
        request,
        "compare.html",
        runs=runs,
        params=params,
        metrics=_rows(runs, "metrics"),
        differing=sum(row["differs"] for row in params),
        **_chart_page_context(charts, truncated),
    )
