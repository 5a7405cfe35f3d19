"""FastAPI dependencies: the stores a request works on (overridable in tests)."""

from __future__ import annotations

from fastapi import Request

from keel.stores import Stores

__all__ = ["get_stores"]


def get_stores(request: Request) -> Stores:
    """Return the stores this server was started on."""
    return request.app.state.stores
