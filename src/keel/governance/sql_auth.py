"""Users, role bindings and API tokens on SQLite or PostgreSQL, each change audited."""

from __future__ import annotations

import hmac
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy import exc as sa_exc

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound, Unauthenticated
from keel.governance.auth import (
    AuthStore,
    Binding,
    NewToken,
    Principal,
    Role,
    TokenInfo,
    User,
    check_expires_days,
    check_label,
    check_object,
    check_token_id,
    check_user_name,
    hash_token,
    new_token,
    token_id_of,
)
from keel.governance.chain import Entry, append
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database

__all__ = ["SqlAuthStore"]

_DAY_MS = 86_400_000
_INVALID = (
    "invalid API token: it is unknown, or was mistyped; create one with "
    "`keel auth token create --user NAME`"
)


def _label(object_type: str, object_id: str) -> str:
    return f"{object_type} {object_id!r}"


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        token_id=row.token_id,
        user=row.user_name,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class SqlAuthStore(AuthStore):
    """Users, role bindings and tokens in a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users ---------------------------------------------------------------------------
    def create_user(self, name: str, *, role: Role = Role.VIEWER) -> User:
        name, role = check_user_name(name), Role.parse(role)
        try:
            with self.db.write() as conn:
                if self._role_of(conn, name) is not None:
                    raise AlreadyExists(f"a user named {name!r} already exists")
                conn.execute(
                    t.users.insert().values(name=name, role=role.value, created_at=now_ms())
                )
                append(conn, [Entry("user.create", "user", name, {"role": role.value})])
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"a user named {name!r} already exists") from None
        return self.get_user(name)

    def get_user(self, name: str) -> User:
        name = check_user_name(name)
        with self.db.read() as conn:
            users = self._users(conn, name)
        if not users:
            raise NotFound(f"no user named {name!r}; add one with `keel auth user add {name}`")
        return users[0]

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            return self._users(conn, None)

    @staticmethod
    def _users(conn: Connection, name: str | None) -> list[User]:
        u, b = t.users, t.role_bindings
        users_q = select(u).order_by(u.c.name)
        bindings_q = select(b).order_by(b.c.object_type, b.c.object_id)
        if name is not None:
            users_q = users_q.where(u.c.name == name)
            bindings_q = bindings_q.where(b.c.user_name == name)
        bound: dict[str, list[Binding]] = {}
        for row in conn.execute(bindings_q):
            binding = Binding(row.object_type, row.object_id, Role(row.role))
            bound.setdefault(row.user_name, []).append(binding)
        return [
            User(row.name, Role(row.role), row.created_at, tuple(bound.get(row.name, ())))
            for row in conn.execute(users_q)
        ]

    @staticmethod
    def _role_of(conn: Connection, name: str) -> Role | None:
        found = conn.execute(select(t.users.c.role).where(t.users.c.name == name)).scalar()
        return None if found is None else Role(found)

    def _existing(self, conn: Connection, name: str) -> Role:
        role = self._role_of(conn, name)
        if role is None:
            raise NotFound(f"no user named {name!r}; add one with `keel auth user add {name}`")
        return role

    # -- roles ---------------------------------------------------------------------------
    def grant(
        self,
        user: str,
        role: Role,
        *,
        experiment_id: str | None = None,
        model: str | None = None,
    ) -> User:
        user, role = check_user_name(user), Role.parse(role)
        target = check_object(experiment_id, model)
        with self.db.write() as conn:
            current = self._existing(conn, user)
            if target is None:
                conn.execute(update(t.users).where(t.users.c.name == user).values(role=role.value))
                change = {"on": "global", "role": role.value, "previous": current.value}
            else:
                self._check_exists(conn, *target)
                previous = self._binding(conn, user, *target)
                self.db.upsert(
                    conn,
                    t.role_bindings,
                    [
                        {
                            "user_name": user,
                            "object_type": target[0],
                            "object_id": target[1],
                            "role": role.value,
                            "created_at": now_ms(),
                        }
                    ],
                    keys=["user_name", "object_type", "object_id"],
                    update=["role", "created_at"],
                )
                change = {
                    "on": f"{target[0]}/{target[1]}",
                    "role": role.value,
                    "previous": None if previous is None else previous.value,
                }
            append(conn, [Entry("role.grant", "user", user, change)])
        return self.get_user(user)

    def revoke(
        self,
        user: str,
        role: Role,
        *,
        experiment_id: str | None = None,
        model: str | None = None,
    ) -> User:
        user, role = check_user_name(user), Role.parse(role)
        target = check_object(experiment_id, model)
        with self.db.write() as conn:
            current = self._existing(conn, user)
            if target is None:
                if role is Role.VIEWER:
                    raise InvalidInput(
                        "every user is at least a viewer globally; revoke their tokens "
                        "(`keel auth token revoke ID`) to shut a user out"
                    )
                if current is not role:
                    raise Conflict(
                        f"{user!r} is {current.value} globally, not {role.value}; nothing "
                        "was changed"
                    )
                conn.execute(
                    update(t.users).where(t.users.c.name == user).values(role=Role.VIEWER.value)
                )
                on = "global"
            else:
                if self._binding(conn, user, *target) is not role:
                    raise NotFound(
                        f"{user!r} holds no {role.value} binding on {_label(*target)}; "
                        "`keel auth user list` shows every binding"
                    )
                b = t.role_bindings
                conn.execute(
                    delete(b).where(
                        b.c.user_name == user,
                        b.c.object_type == target[0],
                        b.c.object_id == target[1],
                    )
                )
                on = f"{target[0]}/{target[1]}"
            append(conn, [Entry("role.revoke", "user", user, {"on": on, "role": role.value})])
        return self.get_user(user)

    @staticmethod
    def _binding(conn: Connection, user: str, object_type: str, object_id: str) -> Role | None:
        b = t.role_bindings
        found = conn.execute(
            select(b.c.role).where(
                b.c.user_name == user, b.c.object_type == object_type, b.c.object_id == object_id
            )
        ).scalar()
        return None if found is None else Role(found)

    @staticmethod
    def _check_exists(conn: Connection, object_type: str, object_id: str) -> None:
        if object_type == "experiment":
            query = select(t.experiments.c.experiment_id).where(
                t.experiments.c.experiment_id == object_id
            )
        else:
            query = select(t.registered_models.c.name).where(
                t.registered_models.c.name == object_id
            )
        if conn.execute(query).first() is None:
            raise NotFound(f"no {_label(object_type, object_id)} to grant a role on")

    # -- tokens --------------------------------------------------------------------------
    def create_token(
        self, user: str, *, expires_days: int | None = None, label: str | None = None
    ) -> NewToken:
        user = check_user_name(user)
        days, label = check_expires_days(expires_days), check_label(label)
        token_id, token = new_token()
        now = now_ms()
        expires_at = None if days is None else now + days * _DAY_MS
        with self.db.write() as conn:
            self._existing(conn, user)
            conn.execute(
                t.api_tokens.insert().values(
                    token_id=token_id,
                    user_name=user,
                    token_hash=hash_token(token),
                    label=label,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
            change = {"user": user, "label": label, "expires_at": expires_at}
            append(conn, [Entry("token.create", "token", token_id, change)])
        info = TokenInfo(token_id, user, label, now, expires_at, None)
        return NewToken(token=token, info=info)

    def list_tokens(self, *, user: str | None = None) -> list[TokenInfo]:
        k = t.api_tokens
        query = select(k).order_by(k.c.created_at, k.c.token_id)
        if user is not None:
            query = query.where(k.c.user_name == check_user_name(user))
        with self.db.read() as conn:
            return [_token(row) for row in conn.execute(query)]

    def revoke_token(self, token_id: str) -> TokenInfo:
        token_id = check_token_id(token_id)
        k = t.api_tokens
        with self.db.write() as conn:
            row = conn.execute(select(k).where(k.c.token_id == token_id)).first()
            if row is None:
                raise NotFound(f"no token with id {token_id}; `keel auth token list` shows them")
            if row.revoked_at is not None:
                raise Conflict(f"token {token_id} was already revoked")
            now = now_ms()
            conn.execute(update(k).where(k.c.token_id == token_id).values(revoked_at=now))
            append(conn, [Entry("token.revoke", "token", token_id, {"user": row.user_name})])
        return TokenInfo(
            row.token_id, row.user_name, row.label, row.created_at, row.expires_at, now
        )

    def authenticate(self, token: str) -> Principal:
        token_id = token_id_of(token)
        k, u, b = t.api_tokens, t.users, t.role_bindings
        query = (
            select(
                k.c.token_hash,
                k.c.expires_at,
                k.c.revoked_at,
                u.c.name,
                u.c.role,
                b.c.object_type,
                b.c.object_id,
                b.c.role.label("bound_role"),
            )
            .join(u, u.c.name == k.c.user_name)
            .outerjoin(b, b.c.user_name == u.c.name)
            .where(k.c.token_id == token_id)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        if not rows or not hmac.compare_digest(rows[0].token_hash, hash_token(token)):
            raise Unauthenticated(_INVALID)
        first = rows[0]
        if first.revoked_at is not None:
            raise Unauthenticated(f"API token {token_id} was revoked; ask an admin for a new one")
        if first.expires_at is not None and first.expires_at <= now_ms():
            raise Unauthenticated(f"API token {token_id} has expired; ask an admin for a new one")
        bindings = {
            (row.object_type, row.object_id): Role(row.bound_role)
            for row in rows
            if row.object_type is not None
        }
        return Principal(first.name, Role(first.role), bindings, token_id)
