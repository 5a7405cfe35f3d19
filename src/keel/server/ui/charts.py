"""Plotly for the UI's charts, served from the installed ``plotly`` package (the
``ui-charts`` extra): no CDN, no Node build. Without it, pages say which extra to install."""

from __future__ import annotations

from functools import cache
from importlib import metadata
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from keel.errors import NotFound

__all__ = ["MISSING_NOTE", "plotly_url", "router"]

MISSING_NOTE = "Charts need Plotly: pip install 'keel-mlops[ui-charts]'"

router = APIRouter(include_in_schema=False)


@cache
def _plotly() -> tuple[str, Path] | None:
    try:
        version = metadata.version("plotly")
        dist = metadata.distribution("plotly")
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("plotly/package_data/plotly.min.js")))
    return (version, path) if path.is_file() else None


def plotly_url() -> str | None:
    """Return the URL of plotly.min.js on this server, or None without the extra."""
    found = _plotly()
    return None if found is None else f"/static/plotly/{found[0]}/plotly.min.js"


@router.get("/static/plotly/{version}/plotly.min.js")
def plotly_js(version: str) -> Response:
    """Return plotly.min.js; the URL names the version, so it is cached for a year."""
    found = _plotly()
    if found is None or found[0] != version:
        raise NotFound(f"no plotly.min.js for version {version[:40]!r} on this server")
    return FileResponse(
        found[1],
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
