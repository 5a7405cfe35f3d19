"""The UI's login: a form takes an API token and keeps it in an HttpOnly cookie.

Authentication is on when the app has an authenticator: ``app.state.ui_authenticate``, a
callable taking a token and returning who it belongs to (or raising / returning None for
a token that is not valid). Then every UI page needs a valid ``keel_token`` cookie and
redirects to ``/login`` without one; with no authenticator every page is open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from keel.errors import KeelError
from keel.server.ui.render import UiRoute, page

__all__ = ["COOKIE_NAME", "LoginRequired", "require_login", "router"]

COOKIE_NAME = "keel_token"
MAX_FORM_BYTES = 16_384

router = APIRouter(route_class=UiRoute, include_in_schema=False)


class LoginRequired(Exception):
    """Raised by ``require_login``; the UI route answers with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def _authenticator(request: Request) -> Callable[[str], Any] | None:
    return getattr(request.app.state, "ui_authenticate", None)


def _valid(authenticate: Callable[[str], Any], token: str) -> bool:
    if not token:
        return False
    try:
        return authenticate(token) is not None
    except KeelError:
        return False


def require_login(request: Request) -> None:
    """Pass when auth is off or the cookie holds a valid token; else ``LoginRequired``."""
    authenticate = _authenticator(request)
    if authenticate is None:
        return
    if not _valid(authenticate, request.cookies.get(COOKIE_NAME, "")):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)


def login_redirect(next_url: str) -> RedirectResponse:
    """Return the redirect to the login page that comes back to ``next_url``."""
    return RedirectResponse(f"/login?next={quote(next_url, safe='')}", status_code=303)


def _local(next_url: str | None) -> str:
    # Only a path on this server: never "//host" or "https://host" (an open redirect).
    if not next_url or not next_url.startswith("/") or next_url.startswith("//"):
        return "/"
    if "\\" in next_url or any(ord(c) < 32 for c in next_url):
        return "/"
    return next_url


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """Return the login form."""
    return page(
        request,
        "login.html",
        next_url=_local(next),
        auth_on=_authenticator(request) is not None,
        error=None,
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the posted token, keep it in the ``keel_token`` cookie and go back."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    next_url = _local((form.get("next") or ["/"])[0])
    authenticate = _authenticator(request)
    if authenticate is not None and not _valid(authenticate, token):
        return page(
            request,
            "login.html",
            401,
            next_url=next_url,
            auth_on=True,
            error="That token is not valid. Check it, or create a new one with `keel auth`.",
        )
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    """Forget the token cookie and show the login page."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response
