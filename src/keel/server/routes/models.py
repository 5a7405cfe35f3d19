"""REST routes of the model registry under /api/v1: one endpoint per ``RegistryStore`` method.

Each route validates its path, query and body, calls the server's own registry store and
returns the entity as JSON; ``KeelError``s become ``{"error_code", "message"}`` bodies in
``keel.server.errors``. Bodies larger than ``MAX_BODY_BYTES`` are refused with a 413 before
they are read into memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message

from keel.governance.auth import Role
from keel.registry.store import RegistryStore
from keel.registry.uris import check_alias, check_model_name
from keel.server.auth import caller, model_in_path, require
from keel.server.deps import get_stores
from keel.server.schemas.registry import (
    MAX_VERSION,
    AliasChangeOut,
    AliasHistoryOut,
    AliasIn,
    CardIn,
    CardOut,
    DescriptionIn,
    ModelIn,
    ModelListOut,
    ModelVersionIn,
    ModelVersionOut,
    RegisteredModelOut,
    TagIn,
    VersionListOut,
    metric_from_json,
)
from keel.stores import Stores
from keel.tracking.validation import check_key

__all__ = ["MAX_BODY_BYTES", "router"]

MAX_BODY_BYTES = 8 * 1024 * 1024


def _too_large() -> HTTPException:
    return HTTPException(413, f"request body is larger than {MAX_BODY_BYTES} bytes")


class _BoundedRoute(APIRoute):
    """A route that refuses bodies over ``MAX_BODY_BYTES`` (declared or streamed)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            declared = request.headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
                raise _too_large()
            received = 0
            receive = request.receive

            async def counting() -> Message:
                nonlocal received
                message = await receive()
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _too_large()
                return message

            return await handler(Request(request.scope, counting))

        return bounded


router = APIRouter(tags=["models"], route_class=_BoundedRoute)
_EDIT_MODEL = [require(Role.EDITOR, on=model_in_path)]

ModelName = Annotated[str, Path(min_length=1, max_length=256, description="registered model")]
VersionNo = Annotated[int, Path(ge=1, le=MAX_VERSION, description="version number, from 1")]
AliasName = Annotated[str, Path(min_length=1, max_length=64, description="alias")]
TagKey = Annotated[str, Path(min_length=1, max_length=250, description="tag key")]


def _registry(stores: Stores = Depends(get_stores)) -> RegistryStore:
    return stores.registry


Registry = Annotated[RegistryStore, Depends(_registry)]


def _actor(request: Request, claimed: str) -> str:
    principal = caller(request)
    return claimed if principal is None else principal.user


# -- registered models -------------------------------------------------------------------
@router.post(
    "/models",
    status_code=201,
    response_model=RegisteredModelOut,
    dependencies=[require(Role.EDITOR)],
)
def create_registered_model(body: ModelIn, registry: Registry) -> dict[str, Any]:
    """Return the new registered model; 409 if the name is taken."""
    tags = {check_key("tag", k): v for k, v in (body.tags or {}).items()}
    model = registry.create_registered_model(
        check_model_name(body.name), description=body.description, tags=tags or None
    )
    return model.to_dict()


@router.get("/models", response_model=ModelListOut)
def list_registered_models(registry: Registry) -> dict[str, Any]:
    """Return every registered model, by name."""
    return {"models": [m.to_dict() for m in registry.list_registered_models()]}


@router.get("/models/{name}", response_model=RegisteredModelOut)
def get_registered_model(name: ModelName, registry: Registry) -> dict[str, Any]:
    """Return one registered model; 404 if there is none by that name."""
    return registry.get_registered_model(check_model_name(name)).to_dict()


@router.patch("/models/{name}", response_model=RegisteredModelOut, dependencies=_EDIT_MODEL)
def update_registered_model(
    name: ModelName, body: DescriptionIn, registry: Registry
) -> dict[str, Any]:
    """Return the model with its new description."""
    return registry.update_registered_model(
        check_model_name(name), description=body.description
    ).to_dict()


@router.delete("/models/{name}", status_code=204, response_class=Response, dependencies=_EDIT_MODEL)
def delete_registered_model(name: ModelName, registry: Registry) -> Response:
    """Delete a model with its versions and aliases; answer 204."""
    registry.delete_registered_model(check_model_name(name))
    return Response(status_code=204)


@router.put(
    "/models/{name}/tags/{key:path}",
    status_code=204,
    response_class=Response,
    dependencies=_EDIT_MODEL,
)
def set_model_tag(name: ModelName, key: TagKey, body: TagIn, registry: Registry) -> Response:
    """Set a tag on a registered model; answer 204."""
    registry.set_model_tag(check_model_name(name), check_key("tag", key), body.value)
    return Response(status_code=204)


# -- versions ----------------------------------------------------------------------------
@router.post(
    "/models/{name}/versions",
    status_code=201,
    response_model=ModelVersionOut,
    dependencies=_EDIT_MODEL,
)
def create_model_version(
    name: ModelName, body: ModelVersionIn, registry: Registry, request: Request
) -> dict[str, Any]:
    """Return a new version numbered one past the model's last (the model is created if
    ``create_model`` is true, else 404 when it does not exist)."""
    fields = body.model_dump(exclude={"create_model"})
    fields["created_by"] = _actor(request, body.created_by)
    if body.metrics is not None:
        fields["metrics"] = {
            check_key("metric", k): metric_from_json(v) for k, v in body.metrics.items()
        }
    version = registry.create_model_version(
        check_model_name(name), fields, create_model=body.create_model
    )
    return version.to_dict()


@router.get("/models/{name}/versions", response_model=VersionListOut)
def list_model_versions(name: ModelName, registry: Registry) -> dict[str, Any]:
    """Return a model's versions, newest first; 404 if the model does not exist."""
    return {"versions": [v.to_dict() for v in registry.list_model_versions(check_model_name(name))]}


@router.get("/models/{name}/versions/{version}", response_model=ModelVersionOut)
def get_model_version(name: ModelName, version: VersionNo, registry: Registry) -> dict[str, Any]:
    """Return one version; 404 if the model or the version does not exist."""
    return registry.get_model_version(check_model_name(name), version).to_dict()


@router.patch(
    "/models/{name}/versions/{version}", response_model=ModelVersionOut, dependencies=_EDIT_MODEL
)
def update_model_version(
    name: ModelName, version: VersionNo, body: DescriptionIn, registry: Registry
) -> dict[str, Any]:
    """Return the version with its new description (unchanged if the body's is null)."""
    return registry.update_model_version(
        check_model_name(name), version, description=body.description
    ).to_dict()


@router.put(
    "/models/{name}/versions/{version}/card",
    status_code=204,
    response_class=Response,
    dependencies=_EDIT_MODEL,
)
def set_model_card(
    name: ModelName, version: VersionNo, body: CardIn, registry: Registry
) -> Response:
    """Store a version's model card body (the markdown after its title); answer 204."""
    registry.set_model_card(check_model_name(name), version, body.card)
    return Response(status_code=204)


@router.get("/models/{name}/versions/{version}/card", response_model=CardOut)
def get_model_card(name: ModelName, version: VersionNo, registry: Registry) -> dict[str, str]:
    """Return ``{"card": markdown}``: the version's title, then its stored card body."""
    return {"card": registry.get_model_card(check_model_name(name), version)}


@router.put(
    "/models/{name}/versions/{version}/tags/{key:path}",
    status_code=204,
    response_class=Response,
    dependencies=_EDIT_MODEL,
)
def set_version_tag(
    name: ModelName, version: VersionNo, key: TagKey, body: TagIn, registry: Registry
) -> Response:
    """Set a tag on a model version; answer 204."""
    registry.set_version_tag(check_model_name(name), version, check_key("tag", key), body.value)
    return Response(status_code=204)


# -- aliases -----------------------------------------------------------------------------
# ``actor`` is taken from the request when auth is off (the SDK sends the OS user); with
# auth on, the token's user replaces it.
@router.put(
    "/models/{name}/aliases/{alias}", response_model=AliasChangeOut, dependencies=_EDIT_MODEL
)
def set_alias(
    name: ModelName, alias: AliasName, body: AliasIn, registry: Registry, request: Request
) -> dict[str, Any]:
    """Return the recorded change after pointing ``alias`` at ``body.version``.

    ``body.actor`` names who moved the alias when auth is off; with auth on, the token's
    user does.
    """
    change = registry.set_alias(
        check_model_name(name), check_alias(alias), body.version, actor=_actor(request, body.actor)
    )
    return change.to_dict()


@router.delete(
    "/models/{name}/aliases/{alias}", response_model=AliasChangeOut, dependencies=_EDIT_MODEL
)
def delete_alias(
    name: ModelName,
    alias: AliasName,
    registry: Registry,
    request: Request,
    actor: Annotated[str, Query(min_length=1, max_length=256)],
) -> dict[str, Any]:
    """Return the recorded removal of ``alias``; 404 if it is not set.

    ``actor`` names who removed it when auth is off; with auth on, the token's user does.
    """
    change = registry.delete_alias(
        check_model_name(name), check_alias(alias), actor=_actor(request, actor)
    )
    return change.to_dict()


@router.get("/models/{name}/aliases/{alias}", response_model=ModelVersionOut)
def get_version_by_alias(name: ModelName, alias: AliasName, registry: Registry) -> dict[str, Any]:
    """Return the version ``alias`` points at; 404 if it is not set."""
    return registry.get_version_by_alias(check_model_name(name), check_alias(alias)).to_dict()


@router.get("/models/{name}/alias-history", response_model=AliasHistoryOut)
def alias_history(
    name: ModelName,
    registry: Registry,
    alias: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    """Return ``{"history": [...]}``: the model's alias changes (or one alias's), oldest
    first."""
    clean = check_alias(alias) if alias is not None else None
    changes = registry.alias_history(check_model_name(name), clean)
    return {"history": [c.to_dict() for c in changes]}
