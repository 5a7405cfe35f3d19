"""One place turns every failure into ``{"error_code", "message"}`` with the right status.

A ``KeelError`` keeps its own status; a request that does not validate is a 400
``INVALID_INPUT`` naming the offending field; anything else is a 500 whose body says only
that something went wrong (the traceback goes to the server log, never to the client).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from keel.errors import KeelError, StoreUnavailable, Unauthenticated
from keel.server.responses import JsonResponse

__all__ = ["install_error_handlers"]

log = logging.getLogger("keel.server")


def _body(code: str, message: str, status: int, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return JsonResponse({"error_code": code, "message": message}, status, headers=headers)


def _describe(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(problems)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error response the same JSON shape."""

    @app.exception_handler(KeelError)
    async def keel_error(_: Request, exc: KeelError):  # type: ignore[no-untyped-def]
        headers = {"Retry-After": "1"} if isinstance(exc, StoreUnavailable) else None
        if isinstance(exc, Unauthenticated):
            headers = {"WWW-Authenticate": "Bearer"}
        return _body(exc.error_code, exc.message, exc.http_status, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):  # type: ignore[no-untyped-def]
        return _body("INVALID_INPUT", _describe(exc), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):  # type: ignore[no-untyped-def]
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE",
                 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}  # fmt: skip
        return _body(codes.get(exc.status_code, "HTTP_ERROR"), str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _body("INTERNAL_ERROR", "internal server error; see the server log", 500)
