"""Identity and roles: users, API tokens, and who may do what.

A user has a global role — ``viewer`` < ``editor`` < ``admin`` — and may hold role
bindings that raise it on one experiment (by id) or one registered model (by name). A
user's effective role on an object is the higher of the two; a run belongs to its
experiment, a model version to its registered model. Every user can read (a viewer at
least); writing needs editor, managing users, tokens and roles needs global admin.

An API token looks like ``keel_<id>_<secret>``: ``id`` is 12 hex characters, shown in
listings and used to revoke it; the secret is 43 URL-safe characters from ``secrets``.
The token is shown once, when it is created; the store keeps only its SHA-256 (enough
for a 256-bit random secret) and compares digests in constant time.

Every change (user added, role granted or revoked, token created or revoked) appends an
audit entry in the same transaction (``keel.governance.chain``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, Unauthenticated

if TYPE_CHECKING:
    from keel.stores import Stores

__all__ = [
    "MAX_EXPIRES_DAYS",
    "OBJECT_TYPES",
    "TOKEN_PREFIX",
    "AuthStore",
    "Binding",
    "NewToken",
    "Principal",
    "Role",
    "TokenInfo",
    "User",
    "auth_store",
    "check_expires_days",
    "check_label",
    "check_object",
    "check_token_id",
    "check_user_name",
    "hash_token",
    "new_token",
    "token_id_of",
]

TOKEN_PREFIX = "keel_"  # noqa: S105 - a public prefix, not a secret
OBJECT_TYPES = ("experiment", "model")
MAX_EXPIRES_DAYS = 3650
MAX_LABEL = 200
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")
_TOKEN = re.compile(r"keel_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Role(Enum):
    """A role, ordered: ``Role.VIEWER < Role.EDITOR < Role.ADMIN``."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Return 0, 1 or 2: the role's place in the order."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: Any) -> Role:
        """Return the role named ``value`` (a ``Role`` or "viewer", "editor", "admin")."""
        if isinstance(value, Role):
            return value
        if isinstance(value, str):
            try:
                return cls(value.strip().lower())
            except ValueError:
                pass
        shown = value[:40] if isinstance(value, str) else value
        raise InvalidInput(f"not a role: {shown!r}; use viewer, editor or admin")


_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Binding:
    """A role on one object: an experiment (by id) or a registered model (by name)."""

    object_type: str
    object_id: str
    role: Role

    def to_dict(self) -> dict[str, str]:
        """Return the binding as plain JSON-ready data."""
        return {
            "object_type": self.object_type,
            "object_id": self.object_id,
            "role": self.role.value,
        }


@dataclass(frozen=True)
class User:
    """A user: name, global role, and the role bindings that raise it on single objects."""

    name: str
    role: Role
    created_at: int
    bindings: tuple[Binding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the user as plain JSON-ready data."""
        return {
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "bindings": [b.to_dict() for b in self.bindings],
        }


@dataclass(frozen=True)
class TokenInfo:
    """What is known about a token apart from its secret (which is never stored)."""

    token_id: str
    user: str
    label: str | None
    created_at: int
    expires_at: int | None
    revoked_at: int | None

    def state(self, now: int) -> str:
        """Return "active", "expired" or "revoked" at epoch-ms ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self, now: int | None = None) -> dict[str, Any]:
        """Return the token's public fields (and its state at ``now``, if given)."""
        out: dict[str, Any] = {
            "token_id": self.token_id,
            "user": self.user,
            "label": self.label,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }
        if now is not None:
            out["state"] = self.state(now)
        return out


@dataclass(frozen=True)
class NewToken:
    """A token just created: the secret ``token`` (shown once) and its ``info``."""

    token: str = field(repr=False)
    info: TokenInfo


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the user, their global role and role bindings."""

    user: str
    role: Role
    bindings: Mapping[tuple[str, str], Role] = field(default_factory=dict)
    token_id: str | None = None

    def role_on(self, object_type: str, object_id: str) -> Role:
        """Return the effective role on one object: max(global role, its binding)."""
        bound = self.bindings.get((object_type, object_id))
        return self.role if bound is None or bound < self.role else bound

    def best_role(self) -> Role:
        """Return the highest role held anywhere (globally or on any object)."""
        return max((self.role, *self.bindings.values()))

    def to_dict(self) -> dict[str, Any]:
        """Return the principal as plain JSON-ready data (no secret)."""
        bindings = [Binding(t, i, r).to_dict() for (t, i), r in sorted(self.bindings.items())]
        return {
            "user": self.user,
            "role": self.role.value,
            "bindings": bindings,
            "token_id": self.token_id,
        }


def check_user_name(name: Any) -> str:
    """Return ``name`` if it is a valid user name, else raise ``InvalidInput``."""
    if not isinstance(name, str) or _USER.fullmatch(name) is None:
        shown = name[:80] if isinstance(name, str) else name
        raise InvalidInput(
            f"not a user name: {shown!r}; use 1 to 64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_token_id(token_id: Any) -> str:
    """Return ``token_id`` if it is a token id (12 lowercase hex characters), else raise."""
    if not isinstance(token_id, str) or _TOKEN_ID.fullmatch(token_id) is None:
        shown = token_id[:80] if isinstance(token_id, str) else token_id
        raise InvalidInput(
            f"not a token id: {shown!r}; a token id is 12 lowercase hex characters, as "
            "`keel auth token list` shows"
        )
    return token_id


def check_label(label: Any) -> str | None:
    """Return a token label (stripped; None when empty), or raise ``InvalidInput``."""
    if label is None:
        return None
    if not isinstance(label, str):
        raise InvalidInput(f"a token label must be a string, not {type(label).__name__}")
    clean = label.strip()
    if len(clean) > MAX_LABEL:
        raise InvalidInput(f"a token label is at most {MAX_LABEL} characters, not {len(clean)}")
    if _CONTROL.search(clean):
        raise InvalidInput("a token label must not contain control characters")
    return clean or None


def check_expires_days(days: Any) -> int | None:
    """Return ``days`` (None: never expires) if it is a whole number from 1 to 3650."""
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_EXPIRES_DAYS:
        raise InvalidInput(
            f"expiry must be a whole number of days from 1 to {MAX_EXPIRES_DAYS}, not {days!r}"
        )
    return days


def check_object(
    experiment_id: str | None = None, model: str | None = None
) -> tuple[str, str] | None:
    """Return ``(object_type, object_id)`` for at most one of the two, checked; None if neither."""
    if experiment_id is not None and model is not None:
        raise InvalidInput("name one object: an experiment or a registered model, not both")
    if experiment_id is not None:
        from keel.tracking.validation import check_id

        return ("experiment", check_id("experiment", experiment_id))
    if model is not None:
        from keel.registry.uris import check_model_name

        return ("model", check_model_name(model))
    return None


def new_token() -> tuple[str, str]:
    """Return ``(token_id, token)``: a fresh id and the full secret token holding it."""
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def token_id_of(token: Any) -> str:
    """Return the id inside a well-formed token, else raise ``Unauthenticated``.

    The message never repeats the token (it may be a secret pasted in the wrong place).
    """
    match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise Unauthenticated(
            "not a Keel API token (they look like keel_<12 hex>_<secret>); create one with "
            "`keel auth token create --user NAME`"
        )
    return match.group(1)


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest the store keeps in place of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthStore(ABC):
    """Users, role bindings and API tokens (SQL in-process, or REST through a server)."""

    @abstractmethod
    def create_user(self, name: str, *, role: Role = Role.VIEWER) -> User:
        """Return the new user; ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_user(self, name: str) -> User:
        """Return the user with their bindings; ``NotFound`` if there is none."""

    @abstractmethod
    def list_users(self) -> list[User]:
        """Return every user with their bindings, by name."""

    @abstractmethod
    def grant(
        self,
        user: str,
        role: Role,
        *,
        experiment_id: str | None = None,
        model: str | None = None,
    ) -> User:
        """Return the user after setting their global role, or their role on one object."""

    @abstractmethod
    def revoke(
        self,
        user: str,
        role: Role,
        *,
        experiment_id: str | None = None,
        model: str | None = None,
    ) -> User:
        """Return the user after removing ``role``: a binding, or a global role (to viewer)."""

    @abstractmethod
    def create_token(
        self, user: str, *, expires_days: int | None = None, label: str | None = None
    ) -> NewToken:
        """Return a new token for ``user`` — the only time its secret is available."""

    @abstractmethod
    def list_tokens(self, *, user: str | None = None) -> list[TokenInfo]:
        """Return every token (or ``user``'s), oldest first, without secrets."""

    @abstractmethod
    def revoke_token(self, token_id: str) -> TokenInfo:
        """Return the token after revoking it; ``Conflict`` if it was already revoked."""

    @abstractmethod
    def authenticate(self, token: str) -> Principal:
        """Return who ``token`` belongs to; ``Unauthenticated`` unless it is valid now."""


def auth_store(stores: Stores | None = None) -> AuthStore:
    """Return the auth store of ``stores`` (default: the current tracking URI's)."""
    if stores is None:
        from keel.stores import current_stores

        stores = current_stores()
    db = getattr(stores.tracking, "db", None)
    if db is not None:
        from keel.governance.sql_auth import SqlAuthStore

        return SqlAuthStore(db)
    http = getattr(stores.tracking, "http", None)
    if http is not None:
        from keel.client.auth import RestAuthStore

        return RestAuthStore(http)
    raise InvalidInput(f"{stores.tracking_uri} has no users or tokens")
