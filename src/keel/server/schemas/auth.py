"""Request bodies of the ``/api/v1/auth`` endpoints (values are checked again by the store)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RoleIn", "TokenIn", "UserIn"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserIn(_Body):
    """POST /auth/users: a new user and their global role."""

    name: str = Field(max_length=64)
    role: str = Field(default="viewer", max_length=16)


class RoleIn(_Body):
    """POST /auth/roles/grant and /revoke: a role, globally or on one object."""

    user: str = Field(max_length=64)
    role: str = Field(max_length=16)
    experiment_id: str | None = Field(default=None, max_length=32)
    model: str | None = Field(default=None, max_length=256)


class TokenIn(_Body):
    """POST /auth/tokens: a new token for a user, optionally expiring."""

    user: str = Field(max_length=64)
    expires_days: int | None = Field(default=None, strict=True, ge=1, le=3650)
    label: str | None = Field(default=None, max_length=200)
