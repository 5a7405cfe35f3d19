"""REST routes of hyperparameter-search studies under /api/v1/hpo: their Optuna journals.

``POST /hpo/studies/{name}/logs`` appends a batch of journal entries (editor; the body is
read up to :data:`MAX_BODY` bytes) and answers the first one's number;
``GET /hpo/studies/{name}/logs?from=N`` returns entries from ``N`` on (viewer). With
those two, Optuna trials anywhere that reaches the server share one study. An append with
``read_from`` also answers the entries from there on (one request where Optuna makes two).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from keel.errors import InvalidInput
from keel.governance.auth import Role
from keel.hpo.store import MAX_LOGS_PER_APPEND, MAX_READ, StudyStore
from keel.server.auth import require
from keel.server.deps import get_stores
from keel.serving.rest import read_body
from keel.stores import Stores

__all__ = ["MAX_BODY", "router"]

router = APIRouter(tags=["hpo"])
_EDIT = [require(Role.EDITOR)]
MAX_BODY = 8 << 20  # bytes of one append; Optuna appends one small entry at a time

Name = Annotated[
    str,
    Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
]


class StudyOut(BaseModel):
    """One study: its name, journal length and times (ms since the epoch)."""

    name: str
    log_count: int
    created_at: int
    updated_at: int


class StudyListOut(BaseModel):
    """Every study, by name."""

    studies: list[StudyOut]


class LogsIn(BaseModel):
    """Journal entries to append, oldest first (Optuna journal operations); with
    ``read_from``, the answer also holds the entries from that number on."""

    logs: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_LOGS_PER_APPEND)
    read_from: int | None = Field(default=None, ge=0, lt=1 << 31)


class AppendOut(BaseModel):
    """Where the appended entries went (the first one's number, how many) and, when asked
    with ``read_from``, the entries from there on read in the same transaction."""

    first: int
    count: int
    logs: list[dict[str, Any]] | None = None


class LogsOut(BaseModel):
    """Journal entries from ``from`` on, and the number to read on from."""

    logs: list[dict[str, Any]]
    next: int


def _store(stores: Stores = Depends(get_stores)) -> StudyStore:
    return stores.hpo


Store = Annotated[StudyStore, Depends(_store)]

_APPEND_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": LogsIn.model_json_schema()}},
    }
}


@router.get("/hpo/studies", response_model=StudyListOut)
def list_studies(store: Store) -> dict[str, Any]:
    """Return every study, by name."""
    return {"studies": [s.to_dict() for s in store.list_studies()]}


@router.get("/hpo/studies/{name}", response_model=StudyOut)
def get_study(name: Name, store: Store) -> dict[str, Any]:
    """Return one study; 404 if it has no journal."""
    return store.get_study(name).to_dict()


@router.get("/hpo/studies/{name}/logs", response_model=LogsOut)
def read_logs(
    name: Name,
    store: Store,
    start: Annotated[int, Query(alias="from", ge=0, lt=1 << 31)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_READ)] = MAX_READ,
) -> dict[str, Any]:
    """Return up to ``limit`` journal entries from number ``from`` on (none for a new study)."""
    logs = store.read_logs(name, start, limit)
    return {"logs": logs, "next": start + len(logs)}


@router.post(
    "/hpo/studies/{name}/logs",
    response_model=AppendOut,
    response_model_exclude_none=True,
    dependencies=_EDIT,
    openapi_extra=_APPEND_BODY,
)
async def append_logs(name: Name, request: Request, store: Store) -> dict[str, Any]:
    """Append journal entries (the study is made on its first); return the first's number."""
    body = await read_body(request, MAX_BODY)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"study {name!r}: the body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("logs"), list):
        raise InvalidInput(f'study {name!r}: send {{"logs": [entry, ...]}}')
    logs, read_from = doc["logs"], doc.get("read_from")
    if read_from is None:
        first = await run_in_threadpool(store.append_logs, name, logs)
        return {"first": first, "count": len(logs)}
    first, after = await run_in_threadpool(store.append_and_read, name, logs, read_from)
    return {"first": first, "count": len(logs), "logs": after}
