"""UI page: a deployment's monitoring over the last hour, day or week — the summary, the
charts over time (drift, latency, errors, throughput, live performance), each input
column's reference-against-current distribution, and the deployment's alerts with their
recent events. The figures are ``keel.monitoring.monitoring_report``'s; the charts are
drawn by the script the HTML report inlines, served here as ``/static/monitoring.js``."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.deploy.entities import check_deployment_name
from keel.errors import InvalidInput, NotFound
from keel.server.deps import get_stores
from keel.server.ui.charts import MISSING_NOTE, plotly_url
from keel.server.ui.render import UiRoute, page
from keel.server.ui.session import require_login
from keel.stores import Stores

__all__ = ["WINDOWS", "router"]

WINDOWS = ("1h", "24h", "7d")
MAX_WINDOW_MS = 31 * 86_400_000  # a page, not a batch job: longer goes to keel monitor report

router = APIRouter(route_class=UiRoute, include_in_schema=False)


def _window(window: str) -> str:
    from keel.monitoring.windows import parse_window

    try:
        ms = parse_window(window)
    except InvalidInput as exc:
        raise InvalidInput(f"window: {exc}") from None
    if ms > MAX_WINDOW_MS:
        raise InvalidInput(
            f"window {window[:40]!r} is longer than the page shows (31d); "
            "use keel monitor report --window for longer"
        )
    return window.strip()


@router.get("/deployments/{name}/monitoring", dependencies=[Depends(require_login)])
def monitoring(
    request: Request,
    name: str,
    window: str = Query("24h", max_length=40),
    stores: Stores = Depends(get_stores),
) -> Response:
    """One deployment's monitoring over ``?window=`` (1h, 24h, 7d, or any up to 31d)."""
    from keel.monitoring.report import monitoring_report
    from keel.monitoring.report_html import OVER_TIME, format_summary

    try:
        name = check_deployment_name(name)
    except InvalidInput:
        raise NotFound(f"no deployment named {name[:80]!r}") from None
    dep = stores.deployments.get_deployment(name)  # an unknown name is the 404 page
    window = _window(window)
    data = monitoring_report(dep.name, window=window, stores=stores).to_dict()
    return page(
        request,
        "monitoring.html",
        dep=dep,
        data=data,
        summary=format_summary(data),
        window=window,
        windows=WINDOWS,
        over_time=OVER_TIME,
        plotly_url=plotly_url(),
        charts_note=MISSING_NOTE,
    )


@router.get("/static/monitoring.js")
def monitoring_js() -> Response:
    """Return the script that draws the monitoring charts (the HTML report's own)."""
    from keel.monitoring.report_html import charts_js

    return Response(
        charts_js(),
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
