"""The web UI: server-rendered pages (Jinja2), a little plain JavaScript, Plotly charts.

Pages: ``/`` experiments, ``/experiments/{id}`` runs table, ``/runs/{id}`` a run,
``/compare?run=…&run=…``, ``/models``, ``/models/{name}``, ``/models/{name}/versions/{n}``,
``/pipelines``, ``/pipelines/{name}``, ``/pipeline-runs/{id}`` (a run's DAG),
``/deployments``, ``/deployments/{name}``, ``/deployments/{name}/monitoring``, ``/audit``
and ``/login``; CSS and JavaScript under ``/static``. None of them is part of the OpenAPI
schema, which stays about the REST API.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["STATIC", "install_ui"]

STATIC = Path(__file__).parent / "static"


def install_ui(app: FastAPI) -> None:
    """Add the UI's pages and static files to ``app``."""
    from fastapi.staticfiles import StaticFiles

    from keel.server.ui import (
        audit,
        charts,
        deployments,
        experiments,
        models,
        monitoring,
        pipelines,
        runs,
        session,
    )

    modules = (session, charts, experiments, runs, models, pipelines, deployments, monitoring)
    for module in (*modules, audit):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
