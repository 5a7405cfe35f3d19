"""Rendering for the web UI: one Jinja2 environment (autoescaped), filters, error pages.

Every UI router uses ``UiRoute``: a ``KeelError`` or a request that does not validate
becomes an HTML page with the right status (a 404 page for unknown ids, the message of a
bad filter), never the API's JSON and never a 500 with a traceback.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from keel._version import __version__
from keel.errors import InvalidInput, KeelError, NotFound
from keel.tracking.validation import check_id

__all__ = ["UiRoute", "page", "page_id", "script_json"]

TEMPLATES = Path(__file__).parent / "templates"
# Scripts only from this server (so even an escaping bug could not run injected code);
# Plotly sets inline styles on what it draws, hence style-src 'unsafe-inline'.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
log = logging.getLogger("keel.server")

# In a <script> block, "</script>" or "<!--" inside a string would end or change it; JSON
# allows these characters escaped, so the data reads back exactly.
_SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}
_SCRIPT_ESCAPES.update({0x2028: "\\u2028", 0x2029: "\\u2029"})


def script_json(value: Any) -> Markup:
    """Return ``value`` as JSON that is safe inside a ``<script>`` element (NaN, ±inf: null)."""
    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return Markup(text.translate(_SCRIPT_ESCAPES))  # noqa: S704 - escaped for <script> above


def _json_text(value: Any, indent: bool = False) -> str:
    # Plain text (autoescaped where it is shown), not Markup.
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(value, option=option | orjson.OPT_NON_STR_KEYS, default=str).decode()


def _when(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _number(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.6g}"
    return "—" if value is None else str(value)


def _query(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    kept = {k: v for k, v in merged.items() if v is not None and (v != "" or k == "columns")}
    return "?" + urlencode(kept, doseq=True)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        duration=_duration,
        number=_number,
        script_json=script_json,
        json_text=_json_text,
    )
    env.globals.update(keel_version=__version__, query=_query)
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Return the HTML response of ``template`` rendered with ``context``."""
    html = _environment().get_template(template).render(request=request, **context)
    headers = {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CSP,
        "Referrer-Policy": "same-origin",
    }
    return HTMLResponse(html, status_code=status_code, headers=headers)


def page_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a well-formed id; otherwise a ``NotFound`` naming it."""
    try:
        return check_id(kind, value)
    except InvalidInput:
        raise NotFound(f"no {kind} with id {value[:80]!r}") from None


def _error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return page(request, "error.html", status, title=title, message=message)


_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


class UiRoute(APIRoute):
    """A UI route: errors render as HTML pages with their status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler, wrapped to turn errors into HTML pages."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            from keel.server.ui.session import LoginRequired, login_redirect

            try:
                return await handler(request)
            except LoginRequired as exc:
                return login_redirect(exc.next_url)
            except KeelError as exc:
                title = _TITLES.get(exc.http_status, "Something went wrong")
                return _error_page(request, exc.http_status, title, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()[:5]
                )
                return _error_page(request, 400, "Bad request", f"invalid request: {problems}")

        return handle
