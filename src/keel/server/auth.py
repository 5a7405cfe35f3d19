"""Authentication and authorisation for the Keel server.

With auth on (``create_app(auth=True)``, ``keel server --auth`` or ``KEEL_AUTH=true``):

- ``AuthGate``, an ASGI middleware, demands a token on every path under ``/api/`` and on
  ``/metrics``, ``/docs``, ``/redoc`` and ``/openapi.json`` (``is_protected``):
  ``Authorization: Bearer <token>`` or the ``keel_token`` cookie, which the web UI's login
  page sets. A missing or invalid token is a 401 with ``WWW-Authenticate: Bearer``. The
  request then runs ``acting_as`` its user, so every audit entry it appends names that
  user. ``/health`` is public; the UI's pages redirect to its login page themselves
  (``keel.server.ui.session``, given ``authenticate`` as ``app.state.ui_authenticate``).
- ``require(role, on=…)``, a dependency every route declares, answers 403 unless the
  caller's effective role — on the object ``on`` finds (an experiment or a registered
  model), or globally — is at least ``role``. Reads need viewer, writes editor, managing
  users, tokens and roles global admin.

With auth off, no middleware is installed and ``require`` returns at once: no database
query is added to any request.

The web UI uses ``COOKIE_NAME`` and ``authenticate(stores, token)`` for its login page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from keel.errors import KeelError, PermissionDenied, Unauthenticated
from keel.governance.auth import Principal, Role, auth_store
from keel.governance.identity import acting_as
from keel.server.responses import JsonResponse
from keel.stores import Stores

__all__ = [
    "ANY_OBJECT",
    "COOKIE_NAME",
    "PUBLIC_PATHS",
    "AuthGate",
    "Target",
    "authenticate",
    "caller",
    "experiment_in_body",
    "experiment_in_path",
    "experiment_of_run",
    "is_protected",
    "model_in_path",
    "require",
    "token_from_request",
]

COOKIE_NAME = "keel_token"
PUBLIC_PATHS: frozenset[str] = frozenset({"/health"})
_PROTECTED = frozenset({"/api", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc"})
_SCOPE_KEY = "keel.principal"
_ID = re.compile(r"[0-9a-f]{32}")
_MISSING = (
    "this Keel server requires an API token: send 'Authorization: Bearer <token>' (the "
    "SDK and CLI send KEEL_TOKEN); an admin creates one with "
    "`keel auth token create --user NAME`"
)

Target = tuple[str, str]
Resolver = Callable[[Request], Awaitable[Target | None]]


async def _any_object(request: Request) -> Target | None:
    return None


# ``require(role, on=ANY_OBJECT)``: the role held globally or on any one object will do.
ANY_OBJECT: Resolver = _any_object


def authenticate(stores: Stores, token: str) -> Principal:
    """Return who ``token`` belongs to; ``Unauthenticated`` unless it is valid now."""
    return auth_store(stores).authenticate(token)


def is_protected(path: str) -> bool:
    """Return whether ``AuthGate`` demands a token for ``path``."""
    return path.startswith("/api/") or path in _PROTECTED or path == "/openapi.json"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _cookie(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == COOKIE_NAME and value:
            return value.strip('"')
    return None


def token_from_request(scope: Scope) -> str | None:
    """Return the token a request carries: its bearer token, else its ``keel_token`` cookie.

    A non-bearer ``Authorization`` header raises ``Unauthenticated`` naming the fix.
    """
    header = _header(scope, b"authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "the Authorization header must be 'Bearer <token>' (no other scheme is accepted)"
            )
        return token.strip()
    return _cookie(_header(scope, b"cookie"))


def _refusal(exc: KeelError) -> JsonResponse:
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthenticated) else None
    return JsonResponse(exc.to_dict(), exc.http_status, headers=headers)


class AuthGate:
    """ASGI middleware: a valid token for every protected path, then the request runs as
    its user (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or not is_protected(path):
            await self.app(scope, receive, send)
            return
        try:
            token = token_from_request(scope)
            if token is None:
                raise Unauthenticated(_MISSING)
            stores = scope["app"].state.stores
            principal = await run_in_threadpool(authenticate, stores, token)
        except KeelError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            await _refusal(exc)(scope, receive, send)
            return
        scope[_SCOPE_KEY] = principal
        with acting_as(principal.user):
            await self.app(scope, receive, send)


def caller(request: Request) -> Principal | None:
    """Return the authenticated caller of ``request`` (None when auth is off)."""
    return request.scope.get(_SCOPE_KEY)


def _where(target: Target | None) -> str:
    if target is None:
        return "globally"
    kind, name = target
    return f"globally or on {kind} {name!r}"


def require(role: Role, on: Resolver | None = None) -> Any:
    """Return a dependency that answers 403 unless the caller holds ``role``.

    ``on`` finds the object the request acts on (see ``experiment_of_run`` and the other
    resolvers here); the caller's role on it counts as well as their global role. The
    returned dependency carries ``keel_role`` so a test can check that every route
    declares one.
    """

    async def check(request: Request) -> Principal | None:
        if not request.app.state.auth:
            return None
        principal = caller(request)
        if principal is None:  # the gate lets no such request through; refuse anyway
            raise Unauthenticated(_MISSING)
        if principal.role >= role:
            return principal
        target = None
        if on is ANY_OBJECT:
            if principal.best_role() >= role:
                return principal
        elif on is not None:
            target = await on(request)
            if target is not None and principal.role_on(*target) >= role:
                return principal
        where = "on any experiment or model" if on is ANY_OBJECT else _where(target)
        raise PermissionDenied(
            f"{principal.user} may not {request.method} {request.url.path}: it needs the "
            f"{role.value} role {where}, and {principal.user} is {principal.role.value} "
            "globally; an admin can grant it with `keel auth role grant`"
        )

    check.keel_role = role  # type: ignore[attr-defined]
    check.keel_on = on  # type: ignore[attr-defined]
    return Depends(check)


async def experiment_in_path(request: Request) -> Target | None:
    """Return the experiment named by the ``experiment_id`` path parameter."""
    value = request.path_params.get("experiment_id", "")
    return ("experiment", value) if _ID.fullmatch(value) else None


async def experiment_of_run(request: Request) -> Target | None:
    """Return the experiment of the run named by the ``run_id`` path parameter."""
    run_id = request.path_params.get("run_id", "")
    if not _ID.fullmatch(run_id):
        return None
    stores: Stores = request.app.state.stores
    run = await run_in_threadpool(stores.tracking.get_run, run_id)
    return ("experiment", run.experiment_id)


async def experiment_in_body(request: Request) -> Target | None:
    """Return the experiment named by the JSON body's ``experiment_id`` (already read)."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    value = body.get("experiment_id") if isinstance(body, dict) else None
    return ("experiment", value) if isinstance(value, str) and _ID.fullmatch(value) else None


async def model_in_path(request: Request) -> Target | None:
    """Return the registered model named by the ``name`` path parameter."""
    from keel.registry.uris import check_model_name

    try:
        return ("model", check_model_name(request.path_params.get("name")))
    except KeelError:
        return None
