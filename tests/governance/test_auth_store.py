"""The auth store's contract, on SQLite, PostgreSQL and through a live server (REST).

Users, role bindings and tokens; tokens kept only as hashes; every change audited in the
chain; bad input refused with nothing changed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound, Unauthenticated
from keel.governance.auth import AuthStore, Role, auth_store, hash_token
from keel.governance.sql_audit import SqlAuditStore, verify
from keel.store import schema as t
from keel.store.database import Database
from keel.stores import Stores


@dataclass
class World:
    """An auth store, the database that holds it, and objects to grant roles on."""

    auth: AuthStore
    db: Database
    exp_a: str
    exp_b: str
    base_users: tuple[str, ...] = ()

    def actions(self) -> list[tuple[str, str, str]]:
        entries = SqlAuditStore(self.db).list_entries(limit=10_000)
        return [(e.action, e.object_type, e.object_id) for e in entries]


def _seed(stores: Stores) -> tuple[str, str]:
    a = stores.tracking.create_experiment("a").experiment_id
    b = stores.tracking.create_experiment("b").experiment_id
    stores.registry.create_registered_model("m")
    return a, b


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "rest"])
def world(request: pytest.FixtureRequest, keel_env: Any, tmp_path: Path) -> Iterator[World]:
    from keel.config import load_settings
    from keel.stores import open_stores

    if request.param == "rest":
        from keel.client.http import KeelHttp
        from keel.server import create_app
        from keel.server.serving import serving
        from keel.stores import _open_rest

        settings = load_settings(tmp_path / "server-home")
        server = open_stores(settings)
        a, b = _seed(server)
        sql = auth_store(server)
        sql.create_user("boot", role=Role.ADMIN)
        admin = sql.create_token("boot").token
        with serving(create_app(settings=settings, stores=server, auth=True)) as url:
            client = load_settings(tmp_path / "client-home", tracking_uri=url, token=admin)
            tracking, registry, blobs = _open_rest(url, client)
            remote = Stores(url, url, tracking, registry, blobs)  # type: ignore[arg-type]
            yield World(auth_store(remote), server.tracking.db, a, b, ("boot",))
            http: KeelHttp = tracking.http  # type: ignore[attr-defined]
            http.close()
        return
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_keel_url")
        settings = load_settings(tmp_path / "home", tracking_uri=url)
    else:
        settings = load_settings(tmp_path / "home")
    stores = open_stores(settings)
    a, b = _seed(stores)
    yield World(auth_store(stores), stores.tracking.db, a, b)


def _names(world: World) -> list[str]:
    return [u.name for u in world.auth.list_users() if u.name not in world.base_users]


# -- users -------------------------------------------------------------------------------
def test_users_are_added_listed_and_fetched(world: World) -> None:
    ada = world.auth.create_user("ada", role=Role.ADMIN)
    assert (ada.name, ada.role, ada.bindings) == ("ada", Role.ADMIN, ())
    world.auth.create_user("bob")
    assert _names(world) == ["ada", "bob"]
    assert world.auth.get_user("bob").role is Role.VIEWER
    with pytest.raises(AlreadyExists, match="'ada' already exists"):
        world.auth.create_user("ada")
    with pytest.raises(NotFound, match="no user named 'zed'"):
        world.auth.get_user("zed")


@pytest.mark.parametrize("bad", ["", "a b", "../x", "x\n", "'; DROP TABLE users;--", "a" * 5000])
def test_a_bad_user_name_is_refused_and_nothing_is_added(world: World, bad: str) -> None:
    before = world.actions()
    with pytest.raises(InvalidInput):
        world.auth.create_user(bad)
    with pytest.raises(InvalidInput):
        world.auth.create_user("fine", role="root")  # type: ignore[arg-type]
    assert _names(world) == []
    assert world.actions() == before


# -- tokens ------------------------------------------------------------------------------
def test_a_token_authenticates_its_user_and_is_stored_only_as_a_hash(world: World) -> None:
    world.auth.create_user("ada", role=Role.EDITOR)
    new = world.auth.create_token("ada", label="laptop", expires_days=30)
    assert re.fullmatch(r"keel_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", new.token)
    assert new.token not in repr(new)
    info = new.info
    assert (info.user, info.label, info.revoked_at) == ("ada", "laptop", None)
    assert info.expires_at is not None
    assert info.expires_at - info.created_at == 30 * 86_400_000
    principal = world.auth.authenticate(new.token)
    assert (principal.user, principal.role, principal.token_id) == (
        "ada",
        Role.EDITOR,
        info.token_id,
    )

    with world.db.read() as conn:
        row = conn.execute(
            select(t.api_tokens).where(t.api_tokens.c.token_id == info.token_id)
        ).one()
        dump = " ".join(str(v) for v in conn.execute(text("SELECT * FROM audit_log")).all())
    assert row.token_hash == hash_token(new.token)
    secret = new.token.split("_", 2)[2]
    assert all(secret not in str(value) for value in row)
    assert secret not in dump
    listed = [k for k in world.auth.list_tokens() if k.user == "ada"]
    assert [k.token_id for k in listed] == [info.token_id]
    assert secret not in str(listed[0].to_dict())


def test_a_wrong_unknown_or_malformed_token_is_refused(world: World) -> None:
    world.auth.create_user("ada")
    token = world.auth.create_token("ada").token
    wrong_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
    unknown = "keel_" + "0" * 12 + "_" + "A" * 43
    for bad in (wrong_secret, unknown, "", "x" * 100_000, token + " ", "Bearer " + token):
        with pytest.raises(Unauthenticated) as caught:
            world.auth.authenticate(bad)
        assert token not in str(caught.value)


def test_a_revoked_token_stops_working_at_once(world: World) -> None:
    world.auth.create_user("ada")
    new = world.auth.create_token("ada")
    revoked = world.auth.revoke_token(new.info.token_id)
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        world.auth.authenticate(new.token)
    with pytest.raises(Conflict, match="already revoked"):
        world.auth.revoke_token(new.info.token_id)
    with pytest.raises(NotFound, match="no token with id"):
        world.auth.revoke_token("0" * 12)
    for bad in ("", "xyz", "0" * 13, "../../etc", "A" * 12):
        with pytest.raises(InvalidInput, match="not a token id"):
            world.auth.revoke_token(bad)
    [listed] = [k for k in world.auth.list_tokens(user="ada")]
    assert listed.revoked_at == revoked.revoked_at


def test_an_expired_token_is_refused(world: World) -> None:
    world.auth.create_user("ada")
    new = world.auth.create_token("ada", expires_days=1)
    with world.db.write() as conn:
        conn.execute(update(t.api_tokens).values(expires_at=1))
    with pytest.raises(Unauthenticated, match="expired"):
        world.auth.authenticate(new.token)


def test_bad_token_requests_are_refused_and_nothing_is_created(world: World) -> None:
    world.auth.create_user("ada")
    before = world.actions()
    with pytest.raises(NotFound, match="no user named 'zed'"):
        world.auth.create_token("zed")
    for days in (0, -3, 3651, 10**12):
        with pytest.raises(InvalidInput):
            world.auth.create_token("ada", expires_days=days)
    for label in ("x" * 201, "a\x00b"):
        with pytest.raises(InvalidInput):
            world.auth.create_token("ada", label=label)
    with pytest.raises(InvalidInput):
        world.auth.list_tokens(user="no such/user")
    assert world.auth.list_tokens(user="ada") == []
    assert world.actions() == before


# -- roles -------------------------------------------------------------------------------
def test_global_roles_and_bindings_make_the_effective_role(world: World) -> None:
    world.auth.create_user("ada")
    token = world.auth.create_token("ada").token
    world.auth.grant("ada", Role.EDITOR, experiment_id=world.exp_a)
    user = world.auth.grant("ada", Role.ADMIN, model="m")
    assert {(b.object_type, b.object_id, b.role) for b in user.bindings} == {
        ("experiment", world.exp_a, Role.EDITOR),
        ("model", "m", Role.ADMIN),
    }
    p = world.auth.authenticate(token)
    assert p.role is Role.VIEWER
    assert p.role_on("experiment", world.exp_a) is Role.EDITOR
    assert p.role_on("experiment", world.exp_b) is Role.VIEWER
    assert p.role_on("model", "m") is Role.ADMIN

    world.auth.grant("ada", Role.VIEWER, experiment_id=world.exp_a)  # a grant replaces
    assert world.auth.authenticate(token).role_on("experiment", world.exp_a) is Role.VIEWER
    world.auth.grant("ada", Role.EDITOR)
    assert world.auth.authenticate(token).role is Role.EDITOR
    world.auth.revoke("ada", Role.EDITOR)
    assert world.auth.get_user("ada").role is Role.VIEWER
    world.auth.revoke("ada", Role.ADMIN, model="m")
    assert world.auth.authenticate(token).role_on("model", "m") is Role.VIEWER


def test_bad_grants_and_revokes_are_refused_and_change_nothing(world: World) -> None:
    world.auth.create_user("ada", role=Role.EDITOR)
    before = world.actions()
    with pytest.raises(NotFound, match="no user named 'zed'"):
        world.auth.grant("zed", Role.EDITOR)
    with pytest.raises(NotFound, match="no experiment"):
        world.auth.grant("ada", Role.EDITOR, experiment_id="f" * 32)
    with pytest.raises(NotFound, match="no model 'nope'"):
        world.auth.grant("ada", Role.EDITOR, model="nope")
    with pytest.raises(InvalidInput, match="not both"):
        world.auth.grant("ada", Role.EDITOR, experiment_id=world.exp_a, model="m")
    with pytest.raises(InvalidInput, match="experiment id"):
        world.auth.grant("ada", Role.EDITOR, experiment_id="'; DROP TABLE role_bindings;--")
    with pytest.raises(InvalidInput):
        world.auth.grant("ada", "superuser")  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no editor binding"):
        world.auth.revoke("ada", Role.EDITOR, model="m")
    with pytest.raises(Conflict, match="editor globally, not admin"):
        world.auth.revoke("ada", Role.ADMIN)
    with pytest.raises(InvalidInput, match="at least a viewer"):
        world.auth.revoke("ada", Role.VIEWER)
    assert world.auth.get_user("ada").role is Role.EDITOR
    assert world.auth.get_user("ada").bindings == ()
    assert world.actions() == before


# -- audit -------------------------------------------------------------------------------
def test_every_change_is_audited_in_the_chain(world: World) -> None:
    start = len(world.actions())
    world.auth.create_user("ada")
    new = world.auth.create_token("ada")
    world.auth.grant("ada", Role.EDITOR, experiment_id=world.exp_a)
    world.auth.grant("ada", Role.ADMIN)
    world.auth.revoke("ada", Role.EDITOR, experiment_id=world.exp_a)
    world.auth.revoke_token(new.info.token_id)
    token_id = new.info.token_id
    assert world.actions()[start:] == [
        ("user.create", "user", "ada"),
        ("token.create", "token", token_id),
        ("role.grant", "user", "ada"),
        ("role.grant", "user", "ada"),
        ("role.revoke", "user", "ada"),
        ("token.revoke", "token", token_id),
    ]
    entries = SqlAuditStore(world.db).list_entries(object="ada", action="role")
    assert [e.change for e in entries] == [
        {"on": f"experiment/{world.exp_a}", "role": "editor", "previous": None},
        {"on": "global", "role": "admin", "previous": "viewer"},
        {"on": f"experiment/{world.exp_a}", "role": "editor"},
    ]
    if world.base_users:  # through the server: the admin whose token made the change
        assert {e.actor for e in entries} == {"boot"}
    assert verify(world.db).ok


def test_deleting_a_model_drops_the_roles_bound_to_it(keel_env: Any) -> None:
    from keel.stores import current_stores

    stores = current_stores()
    auth = auth_store(stores)
    stores.registry.create_registered_model("churn")
    auth.create_user("ada")
    token = auth.create_token("ada").token
    auth.grant("ada", Role.ADMIN, model="churn")
    stores.registry.delete_registered_model("churn")
    assert auth.get_user("ada").bindings == ()
    stores.registry.create_registered_model("churn")  # the same name, a new model
    assert auth.authenticate(token).role_on("model", "churn") is Role.VIEWER
