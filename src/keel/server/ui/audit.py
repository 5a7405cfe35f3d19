"""UI page: the audit log, newest first, filtered by object, action and time."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.errors import KeelError
from keel.governance.audit import AuditEntry, audit_store, parse_since
from keel.server.deps import get_stores
from keel.server.ui.render import UiRoute, page
from keel.server.ui.session import require_login
from keel.stores import Stores

__all__ = ["object_link", "router"]

router = APIRouter(
    route_class=UiRoute, include_in_schema=False, dependencies=[Depends(require_login)]
)

LIMITS = (50, 100, 500, 1000)


def object_link(entry: AuditEntry) -> str | None:
    """Return the UI page of the entry's object, or None when it has none."""
    kind, oid = entry.object_type, entry.object_id
    if kind == "run":
        return f"/runs/{oid}"
    if kind == "experiment":
        return f"/experiments/{oid}"
    if kind == "model":
        return f"/models/{quote(oid, safe='')}"
    if kind == "version" and "/" in oid:
        name, _, version = oid.rpartition("/")
        return f"/models/{quote(name, safe='')}/versions/{quote(version, safe='')}"
    if kind == "alias" and "@" in oid:
        return f"/models/{quote(oid.rpartition('@')[0], safe='')}"
    return None


@router.get("/audit")
def audit(
    request: Request,
    object: str = Query(default="", max_length=512),
    action: str = Query(default="", max_length=512),
    since: str = Query(default="", max_length=64),
    limit: int = Query(default=100, ge=1, le=LIMITS[-1]),
    verify: bool = Query(default=False),
    stores: Stores = Depends(get_stores),
) -> Response:
    """The latest audit entries, newest first; with ``verify``, the chain's check too."""
    entries: list[AuditEntry] = []
    error = None
    result = None
    try:
        store = audit_store(stores)
        entries = store.list_entries(
            object=object or None,
            action=action or None,
            since=parse_since(since) if since else None,
            limit=limit,
        )
        result = store.verify() if verify else None
    except KeelError as exc:
        error = exc.message
    return page(
        request,
        "audit.html",
        400 if error else 200,
        entries=[(e, object_link(e)) for e in reversed(entries)],
        object=object,
        action=action,
        since=since,
        limit=limit,
        limits=LIMITS,
        verify_result=result,
        error=error,
    )
