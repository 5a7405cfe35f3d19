"""Users, role bindings and API tokens through a Keel server's ``/api/v1/auth`` routes.

The server checks every value and answers admin-only; its errors come back as the same
``KeelError`` subclasses (``keel.client.http``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from keel.client.http import KeelHttp
from keel.errors import InvalidInput
from keel.governance.auth import (
    AuthStore,
    Binding,
    NewToken,
    Principal,
    Role,
    TokenInfo,
    User,
    check_token_id,
    check_user_name,
    token_id_of,
)

__all__ = ["RestAuthStore", "token_from_dict", "user_from_dict"]

_BASE = "/api/v1/auth"


def user_from_dict(data: dict[str, Any]) -> User:
    """Return the ``User`` a server sent as JSON."""
    bindings = tuple(
        Binding(b["object_type"], b["object_id"], Role(b["role"])) for b in data["bindings"]
    )
    return User(data["name"], Role(data["role"]), data["created_at"], bindings)


def token_from_dict(data: dict[str, Any]) -> TokenInfo:
    """Return the ``TokenInfo`` a server sent as JSON."""
    return TokenInfo(
        token_id=data["token_id"],
        user=data["user"],
        label=data["label"],
        created_at=data["created_at"],
        expires_at=data["expires_at"],
        revoked_at=data["revoked_at"],
    )


def _target(experiment_id: str | None, model: str | None) -> dict[str, str]:
    out = {}
    if experiment_id is not None:
        out["experiment_id"] = experiment_id
    if model is not None:
        out["model"] = model
    return out


class RestAuthStore(AuthStore):
    """Users, roles and tokens managed through a Keel server (needs an admin token)."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def create_user(self, name: str, *, role: Role = Role.VIEWER) -> User:
        body = {"name": name, "role": Role.parse(role).value}
        return user_from_dict(self.http.request("POST", f"{_BASE}/users", json=body))

    def get_user(self, name: str) -> User:
        path = f"{_BASE}/users/{quote(check_user_name(name), safe='')}"
        return user_from_dict(self.http.request("GET", path))

    def list_users(self) -> list[User]:
        found = self.http.request("GET", f"{_BASE}/users")
        return [user_from_dict(u) for u in found["users"]]

    def _role_change(
        self, verb: str, user: str, role: Role, experiment_id: str | None, model: str | None
    ) -> User:
        body = {"user": user, "role": Role.parse(role).value, **_target(experiment_id, model)}
        return user_from_dict(self.http.request("POST", f"{_BASE}/roles/{verb}", json=body))

    def grant(
        self,
        user: str,
        role: Role,
        *,
        experiment_id: str | None = None,
        model: str | None = None,
    ) -> User:
        return self._role_change("grant", user, role, experiment_id, model)

    def revoke(
        self,
        user: str,
        role: Role,
        *,
        experiment_id: str | None = None,
        model: str | None = None,
    ) -> User:
        return self._role_change("revoke", user, role, experiment_id, model)

    def create_token(
        self, user: str, *, expires_days: int | None = None, label: str | None = None
    ) -> NewToken:
        body = {"user": user, "expires_days": expires_days, "label": label}
        found = self.http.request("POST", f"{_BASE}/tokens", json=body)
        return NewToken(token=found["token"], info=token_from_dict(found))

    def list_tokens(self, *, user: str | None = None) -> list[TokenInfo]:
        params = None if user is None else {"user": user}
        found = self.http.request("GET", f"{_BASE}/tokens", params=params)
        return [token_from_dict(k) for k in found["tokens"]]

    def revoke_token(self, token_id: str) -> TokenInfo:
        path = f"{_BASE}/tokens/{check_token_id(token_id)}"
        return token_from_dict(self.http.request("DELETE", path))

    def authenticate(self, token: str) -> Principal:
        token_id_of(token)  # a malformed token never goes into a header
        client = KeelHttp(self.http.base_url, token=token)
        try:
            me = client.request("GET", f"{_BASE}/me")
        finally:
            client.close()
        if me.get("user") is None:
            raise InvalidInput(f"the Keel server at {self.http.base_url} does not check tokens")
        bindings = {(b["object_type"], b["object_id"]): Role(b["role"]) for b in me["bindings"]}
        return Principal(me["user"], Role(me["role"]), bindings, me["token_id"])
