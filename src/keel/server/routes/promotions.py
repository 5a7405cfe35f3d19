"""REST routes of promotions under /api/v1/promotions: approvals and promotion records.

The gates run in the caller's SDK; these routes store what it decided and who approved.
Viewers read. Approving and recording a promotion need an editor (globally or on the
model). With auth on, an approval records the approver's effective role on the model and
is refused (403) below the role the environment's gate asks for (``required_role``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from keel.errors import KeelError, PermissionDenied
from keel.governance.auth import Role
from keel.governance.identity import acting_as
from keel.promotion.entities import GateResult, PromotionResult
from keel.promotion.sql_store import SqlPromotionStore
from keel.promotion.store import DEFAULT_LIMIT, MAX_COMMENT, MAX_LIMIT
from keel.server.auth import Target, caller, require
from keel.server.deps import get_stores
from keel.server.schemas.json_values import StorableJson
from keel.stores import Stores

__all__ = ["router"]

router = APIRouter(tags=["promotions"])

ModelName = Annotated[StrictStr, Field(min_length=1, max_length=256)]
EnvName = Annotated[StrictStr, Field(min_length=1, max_length=64)]
Version = Annotated[StrictInt, Field(ge=1, lt=2**31)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApprovalIn(_Body):
    """POST /promotions/approvals: approve ``model/version`` for ``environment``."""

    model: ModelName
    version: Version
    environment: EnvName
    comment: Annotated[StrictStr, Field(max_length=MAX_COMMENT)] | None = None
    required_role: Literal["viewer", "editor", "admin"] | None = None


class ApprovalOut(BaseModel):
    """One approval."""

    model: str
    version: int
    environment: str
    approver: str
    role: str | None
    comment: str | None
    at: int


class ApprovalListOut(BaseModel):
    """Approvals, oldest first."""

    approvals: list[ApprovalOut]


class GateIn(_Body):
    """One gate's result."""

    kind: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=400)]
    passed: StrictBool
    reason: Annotated[StrictStr, Field(max_length=10_000)]
    details: Annotated[dict[str, StorableJson], Field(max_length=64)] = {}


class PromotionIn(_Body):
    """POST /promotions: the record of one promotion attempt the SDK decided."""

    model: ModelName
    version: Version
    environment: EnvName
    alias: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    outcome: Literal["promoted", "refused", "dry-run", "failed"]
    dry_run: StrictBool
    previous_version: Version | None = None
    gates: Annotated[list[GateIn], Field(max_length=200)]
    deployment: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    rollout: Annotated[dict[str, StorableJson], Field(max_length=32)] | None = None
    reason: Annotated[StrictStr, Field(max_length=100_000)]


class PromotionOut(BaseModel):
    """One promotion attempt with its gates' results."""

    promotion_id: str
    model: str
    version: int
    environment: str
    alias: str
    outcome: str
    passed: bool
    dry_run: bool
    previous_version: int | None
    gates: list[dict[str, Any]]
    reasons: list[str]
    deployment: str | None
    rollout: dict[str, Any] | None
    reason: str
    actor: str
    at: int


class PromotionListOut(BaseModel):
    """Promotion attempts, newest first."""

    promotions: list[PromotionOut]


def _store(stores: Stores = Depends(get_stores)) -> SqlPromotionStore:
    return stores.promotions  # type: ignore[return-value]  # a server's stores are SQL


Store = Annotated[SqlPromotionStore, Depends(_store)]


def _acting(request: Request) -> AbstractContextManager[object]:
    """Return the context a change runs in: as the ``Keel-Actor`` the client names when
    auth is off; with auth on, the token's user already acts and the header is ignored."""
    claimed = request.headers.get("keel-actor")
    if request.app.state.auth or claimed is None:
        return nullcontext()
    return acting_as(claimed)


async def _model_in_body(request: Request) -> Target | None:
    """Return the registered model the JSON body's ``model`` names."""
    from keel.registry.uris import check_model_name

    try:
        body = orjson.loads(await request.body())
        return ("model", check_model_name(body.get("model")))
    except (orjson.JSONDecodeError, AttributeError, KeelError):
        return None


_EDIT_MODEL = [require(Role.EDITOR, on=_model_in_body)]


@router.post(
    "/promotions/approvals", status_code=201, response_model=ApprovalOut, dependencies=_EDIT_MODEL
)
def add_approval(body: ApprovalIn, store: Store, request: Request) -> dict[str, Any]:
    """Return the caller's approval of a version for an environment; 404 unknown version,
    403 (auth on) when the caller's role is below ``required_role``."""
    role = None
    principal = caller(request)
    if principal is not None:
        held = principal.role_on("model", body.model)
        if body.required_role is not None and held < Role.parse(body.required_role):
            raise PermissionDenied(
                f"{principal.user} may not approve {body.model}/{body.version} for "
                f"{body.environment}: its approvals need the {body.required_role} role, and "
                f"{principal.user} is {held.value} on {body.model!r}"
            )
        role = held.value
    with _acting(request):
        approval = store.add_approval(
            body.model, body.version, body.environment, comment=body.comment, role=role
        )
    return approval.to_dict()


@router.get("/promotions/approvals", response_model=ApprovalListOut)
def list_approvals(
    store: Store,
    model: Annotated[str, Query(min_length=1, max_length=256)],
    version: Annotated[int, Query(ge=1, lt=2**31)],
    environment: Annotated[str, Query(min_length=1, max_length=64)],
) -> dict[str, Any]:
    """Return the approvals of a version for an environment, oldest first."""
    return {"approvals": [a.to_dict() for a in store.list_approvals(model, version, environment)]}


@router.post("/promotions", status_code=201, response_model=PromotionOut, dependencies=_EDIT_MODEL)
def record_promotion(body: PromotionIn, store: Store, request: Request) -> dict[str, Any]:
    """Return the promotion attempt stored, with its id, actor and time."""
    record = PromotionResult(
        promotion_id="",
        model=body.model,
        version=body.version,
        environment=body.environment,
        alias=body.alias,
        outcome=body.outcome,
        dry_run=body.dry_run,
        previous_version=body.previous_version,
        gates=tuple(
            GateResult(g.kind, g.name, g.passed, g.reason, dict(g.details)) for g in body.gates
        ),
        deployment=body.deployment,
        rollout=None if body.rollout is None else dict(body.rollout),
        reason=body.reason,
        actor="",
        at=0,
    )
    with _acting(request):
        return store.record_promotion(record).to_dict()


@router.get("/promotions", response_model=PromotionListOut)
def list_promotions(
    store: Store,
    environment: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Return the latest ``limit`` promotion attempts (of one environment or model)."""
    found = store.list_promotions(environment=environment, model=model, limit=limit)
    return {"promotions": [p.to_dict() for p in found]}
