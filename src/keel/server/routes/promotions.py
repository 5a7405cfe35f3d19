"""REST routes of promotions under /api/v1/promotions: approvals and promotion attempts.

``POST /promotions`` asks the server to promote a version into an environment: the server
evaluates the gates of its own environment of that name (read from its config.toml at
each request, so a changed gate applies without a restart) on the data it holds — the
version's run metrics, its artifacts, the champion, the approvals, the deployment — then
moves the alias, starts the rollout through its deployment controller and records its
own result, audited with the caller as actor. A body carrying a result (outcome, gates,
reason…) is refused (400): the server decides those, and answering 201 while dropping
them would let a client believe its verdict was stored.

Viewers read. Approving and promoting need an editor (globally or on the model). With
auth on, an approval records the approver's effective role on the model and is refused
(403) below the role the environment's gate asks for (``required_role``); the approvals
gate counts each approval by that recorded role. Bodies are capped at ``MAX_BODY`` bytes
(413 beyond).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

from keel.errors import KeelError, PermissionDenied
from keel.governance.auth import Role
from keel.governance.identity import acting_as
from keel.promotion.sql_store import SqlPromotionStore
from keel.promotion.store import DEFAULT_LIMIT, MAX_COMMENT, MAX_LIMIT
from keel.server.auth import Target, caller, require
from keel.server.deps import get_stores
from keel.stores import Stores

if TYPE_CHECKING:
    from keel.deploy.controller import DeploymentController
    from keel.deploy.entities import Deployment
    from keel.environments import Environment

__all__ = ["MAX_BODY", "router"]

MAX_BODY = 64 * 1024  # bytes: a promotion or an approval is a few names and a comment


def _too_large() -> HTTPException:
    return HTTPException(413, f"request body is larger than {MAX_BODY} bytes")


class _SmallBodyRoute(APIRoute):
    """A route that refuses bodies over ``MAX_BODY`` bytes with 413 before parsing them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                raise _too_large()
            if request.method == "POST":
                chunks, size = [], 0
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise _too_large()
                    chunks.append(chunk)
                request._body = b"".join(chunks)
            return await handler(request)

        return limited


router = APIRouter(tags=["promotions"], route_class=_SmallBodyRoute)

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


# What the server decides; a body naming one of these is a client posting a verdict.
_RESULT_FIELDS = ("outcome", "passed", "gates", "reasons", "reason", "previous_version",
                  "alias", "deployment", "rollout", "promotion_id", "actor", "at")  # fmt: skip


class PromotionIn(_Body):
    """POST /promotions: promote ``model/version`` into ``environment`` (the server's) if
    every gate passes; with ``dry_run`` evaluate and record only."""

    model: ModelName
    version: Version
    environment: EnvName
    dry_run: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _no_verdict(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            sent = [k for k in _RESULT_FIELDS if k in data]
            if sent:
                raise ValueError(
                    f"a promotion's result is decided by the server, not sent: remove "
                    f"{', '.join(sent)} and send model, version, environment and dry_run"
                )
        return data


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


class _ControllerDeployer:
    """Deployment changes through the server's controller (from the request's worker
    thread onto the event loop), so the data plane serves them before the answer."""

    def __init__(self, controller: DeploymentController) -> None:
        self.controller = controller

    def create(self, name: str, model_uri: str, *, environment: str) -> Deployment:
        import anyio.from_thread

        call = partial(self.controller.create, name, model_uri, environment=environment)
        return anyio.from_thread.run(call)

    def rollout(
        self, name: str, model_uri: str, *, strategy: str, config: Mapping[str, Any] | None
    ) -> Deployment:
        import anyio.from_thread

        call = partial(self.controller.deploy, name, model_uri, strategy=strategy, config=config)
        return anyio.from_thread.run(call)


def _environment(request: Request, name: str) -> Environment:
    """Return the server's environment ``name``, from its config.toml as it is now."""
    from keel.config import load_settings
    from keel.environments import get_environment

    return get_environment(name, load_settings(request.app.state.settings.home))


@router.post("/promotions", status_code=201, response_model=PromotionOut, dependencies=_EDIT_MODEL)
def promote(body: PromotionIn, stores: Annotated[Stores, Depends(get_stores)],
            request: Request) -> dict[str, Any]:  # fmt: skip
    """Return the promotion attempt the server ran and recorded: its gates' results, the
    alias move and the rollout; 404 unknown version or environment, 400 bad gate config."""
    from keel.environments import check_environment_name
    from keel.promotion.engine import run_promotion
    from keel.registry.uris import check_model_name
    from keel.server.routes.deployments import controller_of

    model, name = check_model_name(body.model), check_environment_name(body.environment)
    env = _environment(request, name)
    mv = stores.registry.get_model_version(model, body.version)
    records: SqlPromotionStore = stores.promotions  # type: ignore[assignment]  # SQL on a server
    deployer = _ControllerDeployer(controller_of(request))
    with _acting(request):
        result = run_promotion(
            stores,
            records,
            env,
            mv,
            dry_run=body.dry_run,
            project=request.app.state.settings.home.parent,
            deployer=deployer,
        )
    return result.to_dict()


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
