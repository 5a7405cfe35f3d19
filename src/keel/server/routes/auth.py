"""REST routes for users, role bindings and API tokens under /api/v1/auth (global admin).

``GET /auth/me`` (any valid token) says who the caller is; every other route needs a
global admin. A new token's secret is in the one response that creates it, never again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from keel.governance.auth import AuthStore, Role, auth_store
from keel.server.auth import caller, require
from keel.server.deps import get_stores
from keel.server.schemas.auth import RoleIn, TokenIn, UserIn
from keel.store.clock import now_ms
from keel.stores import Stores

__all__ = ["me_router", "router"]

router = APIRouter(prefix="/auth", tags=["auth"], dependencies=[require(Role.ADMIN)])
me_router = APIRouter(prefix="/auth", tags=["auth"], dependencies=[require(Role.VIEWER)])


def _auth(stores: Stores = Depends(get_stores)) -> AuthStore:
    return auth_store(stores)


Auth = Annotated[AuthStore, Depends(_auth)]
UserName = Annotated[str, Path(min_length=1, max_length=64, description="user name")]


@me_router.get("/me")
def me(request: Request) -> dict[str, Any]:
    """Return the caller: user, global role, bindings and token id (``auth`` false when the
    server does not check tokens)."""
    principal = caller(request)
    if principal is None:
        return {"auth": False, "user": None, "role": None, "bindings": [], "token_id": None}
    return {"auth": True, **principal.to_dict()}


@router.post("/users", status_code=201)
def create_user(body: UserIn, auth: Auth) -> dict[str, Any]:
    """Return the new user; 409 if the name is taken."""
    return auth.create_user(body.name, role=Role.parse(body.role)).to_dict()


@router.get("/users")
def list_users(auth: Auth) -> dict[str, Any]:
    """Return ``{"users": [...]}``: every user with their role bindings, by name."""
    return {"users": [u.to_dict() for u in auth.list_users()]}


@router.get("/users/{name}")
def get_user(name: UserName, auth: Auth) -> dict[str, Any]:
    """Return one user with their role bindings; 404 if there is none."""
    return auth.get_user(name).to_dict()


@router.post("/roles/grant")
def grant_role(body: RoleIn, auth: Auth) -> dict[str, Any]:
    """Return the user after setting their global role, or their role on one experiment
    (``experiment_id``) or registered model (``model``)."""
    user = auth.grant(
        body.user, Role.parse(body.role), experiment_id=body.experiment_id, model=body.model
    )
    return user.to_dict()


@router.post("/roles/revoke")
def revoke_role(body: RoleIn, auth: Auth) -> dict[str, Any]:
    """Return the user after removing a role binding, or lowering their global role to
    viewer."""
    user = auth.revoke(
        body.user, Role.parse(body.role), experiment_id=body.experiment_id, model=body.model
    )
    return user.to_dict()


@router.post("/tokens", status_code=201)
def create_token(body: TokenIn, auth: Auth) -> dict[str, Any]:
    """Return the new token's fields and, this once, its secret ``token``."""
    new = auth.create_token(body.user, expires_days=body.expires_days, label=body.label)
    return {"token": new.token, **new.info.to_dict(now_ms())}


@router.get("/tokens")
def list_tokens(
    auth: Auth, user: Annotated[str | None, Query(min_length=1, max_length=64)] = None
) -> dict[str, Any]:
    """Return ``{"tokens": [...]}`` (or one user's), oldest first — never a secret."""
    now = now_ms()
    return {"tokens": [k.to_dict(now) for k in auth.list_tokens(user=user)]}


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: Annotated[str, Path(min_length=1, max_length=64)], auth: Auth
) -> dict[str, Any]:
    """Return the token, now revoked; 404 if unknown, 409 if already revoked."""
    return auth.revoke_token(token_id).to_dict(now_ms())
