"""Roles, principals, token format and the input checks of ``keel.governance.auth``."""

from __future__ import annotations

import hashlib
import re

import pytest

from keel.errors import InvalidInput, Unauthenticated
from keel.governance.auth import (
    Principal,
    Role,
    TokenInfo,
    check_expires_days,
    check_label,
    check_object,
    check_token_id,
    check_user_name,
    hash_token,
    new_token,
    token_id_of,
)

HOSTILE = ["", " ", "a b", "../etc", "x\n", "'; DROP TABLE users;--", "ünï", "-lead", "a" * 65]


def test_roles_are_ordered_viewer_editor_admin() -> None:
    assert Role.VIEWER < Role.EDITOR < Role.ADMIN
    assert Role.ADMIN >= Role.EDITOR >= Role.EDITOR
    assert not Role.EDITOR > Role.ADMIN
    assert max(Role.EDITOR, Role.VIEWER, Role.ADMIN) is Role.ADMIN
    assert sorted([Role.ADMIN, Role.VIEWER, Role.EDITOR]) == [Role.VIEWER, Role.EDITOR, Role.ADMIN]


@pytest.mark.parametrize("text", ["viewer", "Editor", " ADMIN "])
def test_a_role_parses_from_its_name(text: str) -> None:
    assert Role.parse(text).value == text.strip().lower()


@pytest.mark.parametrize("bad", ["", "owner", "root", None, 1, "x" * 10_000, Role])
def test_a_bad_role_is_invalid_input_naming_the_choices(bad: object) -> None:
    with pytest.raises(InvalidInput, match="viewer, editor or admin") as caught:
        Role.parse(bad)
    assert len(str(caught.value)) < 200  # a huge value is not echoed whole


def test_the_effective_role_is_the_higher_of_global_and_binding() -> None:
    p = Principal(
        "ada",
        Role.VIEWER,
        {("experiment", "a" * 32): Role.EDITOR, ("model", "m"): Role.VIEWER},
    )
    assert p.role_on("experiment", "a" * 32) is Role.EDITOR
    assert p.role_on("experiment", "b" * 32) is Role.VIEWER
    assert p.role_on("model", "m") is Role.VIEWER
    assert p.best_role() is Role.EDITOR
    admin = Principal("root", Role.ADMIN, {("model", "m"): Role.VIEWER})
    assert admin.role_on("model", "m") is Role.ADMIN  # a binding never lowers a role
    assert Principal("v", Role.VIEWER).best_role() is Role.VIEWER


def test_a_new_token_is_random_prefixed_and_holds_its_id() -> None:
    seen = set()
    for _ in range(50):
        token_id, token = new_token()
        assert re.fullmatch(r"keel_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
        assert token_id_of(token) == token_id
        seen.add(token)
    assert len(seen) == 50
    assert hash_token("keel_x") == hashlib.sha256(b"keel_x").hexdigest()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "keel_",
        "Bearer keel_0123456789ab_" + "A" * 43,
        "keel_0123456789AB_" + "A" * 43,
        "keel_0123456789ab_" + "A" * 42,
        "keel_0123456789ab_" + "A" * 43 + "\n",
        "x" * 1_000_000,
        None,
        b"keel_0123456789ab_" + b"A" * 43,
    ],
)
def test_a_malformed_token_is_unauthenticated_and_not_echoed(bad: object) -> None:
    with pytest.raises(Unauthenticated) as caught:
        token_id_of(bad)
    if isinstance(bad, str) and len(bad) > 10:
        assert bad.strip() not in str(caught.value)


@pytest.mark.parametrize("good", ["ada", "a", "ada.lovelace@example.org", "ml-bot_2", "A" * 64])
def test_good_user_names_pass(good: str) -> None:
    assert check_user_name(good) == good


@pytest.mark.parametrize("bad", [*HOSTILE, None, 7, "a" * 100_000])
def test_bad_user_names_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput, match="not a user name") as caught:
        check_user_name(bad)
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("bad", ["", "0123456789a", "0123456789abc", "0123456789AB", "../x", 12])
def test_bad_token_ids_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInput, match="not a token id"):
        check_token_id(bad)


def test_labels_and_expiry_are_checked() -> None:
    assert check_label(None) is None
    assert check_label("  ci  ") == "ci"
    assert check_label("   ") is None
    for bad in ("x" * 201, "a\nb", "\x00", 5):
        with pytest.raises(InvalidInput):
            check_label(bad)
    assert check_expires_days(None) is None
    assert check_expires_days(30) == 30
    for bad in (0, -1, 3651, True, "5", 1.5, 10**30):
        with pytest.raises(InvalidInput, match="1 to 3650"):
            check_expires_days(bad)


def test_an_object_is_one_experiment_id_or_one_model_name() -> None:
    assert check_object() is None
    assert check_object("a" * 32) == ("experiment", "a" * 32)
    assert check_object(model="churn") == ("model", "churn")
    with pytest.raises(InvalidInput, match="not both"):
        check_object("a" * 32, "churn")
    with pytest.raises(InvalidInput, match="experiment id"):
        check_object("not-an-id")
    with pytest.raises(InvalidInput):
        check_object(model="a/b")
    with pytest.raises(InvalidInput):
        check_object(model="")


def test_a_token_state_follows_revocation_and_expiry() -> None:
    info = TokenInfo("0" * 12, "ada", None, 1, 100, None)
    assert info.state(99) == "active"
    assert info.state(100) == "expired"
    assert TokenInfo("0" * 12, "ada", None, 1, None, 50).state(10) == "revoked"
    assert "token" not in info.to_dict(5)
    assert info.to_dict(5)["state"] == "active"
