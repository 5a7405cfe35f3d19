"""UI pages: registered models, a model's versions and aliases, and one version with its
model card (markdown rendered with raw HTML disabled) and a link to its run."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup

from keel.errors import NotFound
from keel.server.deps import get_stores
from keel.server.ui.render import UiRoute, page
from keel.server.ui.session import require_login
from keel.stores import Stores

__all__ = ["render_card", "router"]

router = APIRouter(
    route_class=UiRoute, include_in_schema=False, dependencies=[Depends(require_login)]
)

MAX_VERSION = 2**31 - 1


@cache
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # "js-default": CommonMark plus tables and strikethrough, with raw HTML off (so HTML in
    # a card shows as text) and links to javascript:, vbscript:, file: and data: refused.
    return MarkdownIt("js-default")


def render_card(text: str) -> Markup:
    """Return a model card's markdown as HTML in which every user character is escaped.

    Its headings move two levels down (# becomes <h3>), under the page's own h1 and h2.
    """
    md = _markdown()
    tokens = md.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1:]) + 2)}"
    html = md.renderer.render(tokens, md.options, {})
    return Markup(html)  # noqa: S704 - markdown-it escapes every character; html is off


def _version_number(version: str) -> int:
    if not version.isdigit() or not 1 <= int(version) <= MAX_VERSION:
        raise NotFound(f"no version {version[:40]!r}; versions are numbered 1, 2, 3, …")
    return int(version)


@router.get("/models")
def models(request: Request, stores: Stores = Depends(get_stores)) -> Response:
    """The registered models."""
    return page(request, "models.html", models=stores.registry.list_registered_models())


@router.get("/models/{name}")
def model(request: Request, name: str, stores: Stores = Depends(get_stores)) -> Response:
    """A registered model: its aliases, versions and alias history."""
    found = stores.registry.get_registered_model(name)
    return page(
        request,
        "model.html",
        model=found,
        versions=stores.registry.list_model_versions(found.name),
        history=list(reversed(stores.registry.alias_history(found.name)))[:50],
    )


@router.get("/models/{name}/versions/{version}")
def model_version(
    request: Request, name: str, version: str, stores: Stores = Depends(get_stores)
) -> Response:
    """One model version: its fields, metrics, signature, model card and run."""
    found = stores.registry.get_model_version(name, _version_number(version))
    card = stores.registry.get_model_card(found.name, found.version)
    run_exists = False
    if found.run_id:
        try:
            stores.tracking.get_run(found.run_id)
            run_exists = True
        except NotFound:
            run_exists = False
    return page(
        request,
        "model_version.html",
        version=found,
        card=render_card(card) if card else None,
        run_exists=run_exists,
    )
