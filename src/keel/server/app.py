"""``create_app``: the FastAPI application behind ``keel server``."""

from __future__ import annotations

from fastapi import FastAPI

from keel._version import __version__
from keel.config import KeelSettings, get_settings
from keel.server.errors import install_error_handlers
from keel.server.responses import JsonResponse
from keel.stores import Stores, open_stores

__all__ = ["API_PREFIX", "create_app"]

API_PREFIX = "/api/v1"


def create_app(
    *, settings: KeelSettings | None = None, stores: Stores | None = None, auth: bool | None = None
) -> FastAPI:
    """Return the Keel server application on ``stores`` (opened from settings if omitted).

    ``auth`` (default: the ``auth`` setting, ``KEEL_AUTH``) makes every route but /health
    demand an API token and a role (``keel.server.auth``).
    """
    from keel.governance.auth import Role
    from keel.server.auth import require
    from keel.server.lifespan import server_lifespan
    from keel.server.routes import alerts as alert_routes
    from keel.server.routes import auth as auth_routes
    from keel.server.routes import blobs, deployments, experiments, health, models, runs
    from keel.server.routes import feedback as feedback_routes
    from keel.server.routes import hpo as hpo_routes
    from keel.server.routes import pipelines as pipeline_routes
    from keel.server.routes import promotions as promotion_routes
    from keel.server.routes.inference_lifespan import install_deployments

    settings = settings or get_settings()
    app = FastAPI(
        title="Keel",
        version=__version__,
        description="The REST API of Keel: tracking, registry and artifacts.",
        default_response_class=JsonResponse,
        lifespan=server_lifespan,  # the deployments (data plane) and the periodic jobs
    )
    app.state.settings = settings
    app.state.stores = stores or open_stores(settings)
    app.state.auth = settings.auth if auth is None else auth
    install_error_handlers(app)
    if app.state.auth:
        from functools import partial

        from keel.server.auth import AuthGate, authenticate

        app.add_middleware(AuthGate)
        app.state.ui_authenticate = partial(authenticate, app.state.stores)
    # The deployments data plane: /v2/models/<deployment>/… and /deployments/<name>/…,
    # mounted first so an inference request is matched before the ~40 API routes.
    install_deployments(app)
    app.include_router(health.router)
    # Every route of these routers needs a viewer at least; writes declare more themselves
    # (``require(Role.EDITOR, on=…)``). With auth off the read check is left out entirely,
    # so reads pay nothing for it.
    reads = [require(Role.VIEWER)] if app.state.auth else []
    for module in (experiments, runs, blobs, models, deployments, promotion_routes):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=reads)
    app.include_router(feedback_routes.router, prefix=API_PREFIX, dependencies=reads)
    app.include_router(hpo_routes.router, prefix=API_PREFIX, dependencies=reads)
    app.include_router(alert_routes.router, prefix=API_PREFIX, dependencies=reads)
    app.include_router(pipeline_routes.router, prefix=API_PREFIX, dependencies=reads)
    app.include_router(auth_routes.me_router, prefix=API_PREFIX)
    app.include_router(auth_routes.router, prefix=API_PREFIX)
    from keel.server.ui import install_ui

    install_ui(app)
    return app
