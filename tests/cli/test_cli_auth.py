"""``keel auth user | token | role`` locally and through a server, and ``keel server --auth``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli, database, one_error_line

import keel

TOKEN = r"keel_[0-9a-f]{12}_[A-Za-z0-9_-]{43}"


def _admin(cli: Cli, name: str = "ada") -> str:
    """Add an admin; return a token of theirs."""
    assert cli("auth", "user", "add", name, "--role", "admin").exit_code == 0
    return cli.json("auth", "token", "create", "--user", name)["token"]


# -- users -------------------------------------------------------------------------------
def test_users_are_added_and_listed(cli: Cli) -> None:
    result = cli("auth", "user", "list")
    assert result.exit_code == 0
    assert "no users yet" in result.stdout
    result = cli("auth", "user", "add", "ada", "--role", "admin")
    assert result.exit_code == 0, result.output
    assert "added ada (admin)" in result.stdout
    assert cli.json("auth", "user", "add", "bob")["role"] == "viewer"
    users = cli.json("auth", "user", "list")["users"]
    assert [(u["name"], u["role"]) for u in users] == [("ada", "admin"), ("bob", "viewer")]
    table = cli("auth", "user", "list").stdout
    assert "ada" in table
    assert "admin" in table


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ada"], "already exists"),
        (["a b"], "not a user name"),
        ([""], "not a user name"),
        (["x" * 10_000], "not a user name"),
        (["'; DROP TABLE users;--"], "not a user name"),
        (["zoe", "--role", "god"], "not a role"),
    ],
)
def test_a_bad_user_is_one_error_line_exit_2_and_nothing_added(
    cli: Cli, args: list[str], expected: str
) -> None:
    cli("auth", "user", "add", "ada")
    result = cli("auth", "user", "add", *args)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert expected in line
    assert len(line) < 300
    assert [u["name"] for u in cli.json("auth", "user", "list")["users"]] == ["ada"]


# -- tokens ------------------------------------------------------------------------------
def test_a_token_is_shown_once_and_never_listed(cli: Cli, home: Path) -> None:
    import re

    cli("auth", "user", "add", "ada")
    result = cli("auth", "token", "create", "--user", "ada", "--expires-days", "30")
    assert result.exit_code == 0, result.output
    [token] = re.findall(TOKEN, result.stdout)
    assert "not shown again" in result.stdout
    assert "expires" in result.stdout
    token_id = token.split("_")[1]

    listing = cli("auth", "token", "list")
    assert token_id in listing.stdout
    assert "active" in listing.stdout
    secret = token.split("_", 2)[2]
    assert secret not in listing.stdout
    document = cli.json("auth", "token", "list", "--user", "ada")
    assert [k["token_id"] for k in document["tokens"]] == [token_id]
    assert secret not in json.dumps(document)
    conn = database(home)
    try:
        rows = conn.execute("SELECT * FROM api_tokens").fetchall()
        audit = conn.execute("SELECT change FROM audit_log").fetchall()
    finally:
        conn.close()
    assert secret not in repr(rows)
    assert secret not in repr(audit)

    revoked = cli.json("auth", "token", "revoke", token_id)
    assert revoked["state"] == "revoked"
    again = cli("auth", "token", "revoke", token_id)
    assert again.exit_code == 1
    assert "already revoked" in one_error_line(again)


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["create", "--user", "zed"], 2, "no user named 'zed'"),
        (["create", "--user", "ada", "--expires-days", "0"], 2, "1 to 3650"),
        (["create", "--user", "ada", "--expires-days", "99999"], 2, "1 to 3650"),
        (["create", "--user", "ada", "--label", "x" * 500], 2, "at most 200"),
        (["revoke", "0123456789ab"], 2, "no token with id"),
        (["revoke", "../../etc/passwd"], 2, "not a token id"),
        (["revoke", ""], 2, "not a token id"),
    ],
)
def test_bad_token_commands_are_one_error_line(
    cli: Cli, args: list[str], code: int, expected: str
) -> None:
    cli("auth", "user", "add", "ada")
    result = cli("auth", "token", *args)
    assert result.exit_code == code, result.output
    assert expected in one_error_line(result)
    assert cli.json("auth", "token", "list")["tokens"] == []


# -- roles -------------------------------------------------------------------------------
def test_roles_are_granted_and_revoked_globally_and_per_object(cli: Cli, home: Path) -> None:
    experiment = keel.create_experiment("churn").experiment_id
    from keel.stores import current_stores

    current_stores().registry.create_registered_model("m")
    cli("auth", "user", "add", "bob")
    result = cli("auth", "role", "grant", "bob", "editor", "--experiment", "churn")
    assert result.exit_code == 0, result.output
    assert "bob is now editor on experiment churn" in result.stdout
    user = cli.json("auth", "role", "grant", "bob", "admin", "--model", "m")
    assert user["bindings"] == [
        {"object_type": "experiment", "object_id": experiment, "role": "editor"},
        {"object_type": "model", "object_id": "m", "role": "admin"},
    ]
    assert cli.json("auth", "role", "grant", "bob", "editor")["role"] == "editor"
    assert cli.json("auth", "role", "revoke", "bob", "editor")["role"] == "viewer"
    result = cli("auth", "role", "revoke", "bob", "admin", "--model", "m")
    assert result.exit_code == 0
    assert "revoked admin from bob on model m" in result.stdout
    assert "editor on experiment" in cli("auth", "user", "list").stdout
    actions = [e["action"] for e in cli.json("audit", "log", "--object", "bob")["entries"]]
    assert actions == ["user.create", *["role.grant"] * 3, *["role.revoke"] * 2]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["grant", "bob", "owner"], 2, "not a role"),
        (["grant", "zed", "editor"], 2, "no user named 'zed'"),
        (["grant", "bob", "editor", "--experiment", "nope"], 2, "no experiment named 'nope'"),
        (["grant", "bob", "editor", "--model", "nope"], 2, "no model 'nope'"),
        (["grant", "bob", "editor", "--model", "a/b"], 2, "must not contain"),
        (["grant", "bob", "editor", "--experiment", "churn", "--model", "m"], 2, "not both"),
        (["revoke", "bob", "viewer"], 2, "at least a viewer"),
        (["revoke", "bob", "admin"], 1, "viewer globally, not admin"),
        (["revoke", "bob", "editor", "--experiment", "churn"], 2, "no editor binding"),
    ],
)
def test_bad_role_commands_are_one_error_line_and_change_nothing(
    cli: Cli, args: list[str], code: int, expected: str
) -> None:
    keel.create_experiment("churn")
    cli("auth", "user", "add", "bob")
    before = cli.json("audit", "log")["entries"]
    result = cli("auth", "role", *args)
    assert result.exit_code == code, result.output
    assert expected in one_error_line(result)
    assert cli.json("audit", "log")["entries"] == before


# -- remote mode -------------------------------------------------------------------------
@pytest.fixture
def remote(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A live server with auth on; yield env for the CLI: its URL and an admin token."""
    from tests.live_server import running_server

    server_home = tmp_path / "server-home"
    monkeypatch.setenv("KEEL_HOME", str(server_home))
    admin = _admin(cli, "root-admin")
    cli("auth", "user", "add", "vic")
    viewer = cli.json("auth", "token", "create", "--user", "vic")["token"]
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "client-home"))
    with running_server(server_home, auth=True) as url:
        monkeypatch.setenv("KEEL_TRACKING_URI", url)
        yield {"admin": admin, "viewer": viewer}


def test_the_commands_work_through_a_server_with_an_admin_token(
    cli: Cli, remote: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_TOKEN", remote["admin"])
    assert cli.json("auth", "user", "add", "carl", "--role", "editor")["role"] == "editor"
    made = cli.json("auth", "token", "create", "--user", "carl", "--label", "ci")
    listed = cli.json("auth", "token", "list", "--user", "carl")["tokens"]
    assert [(k["token_id"], k["label"]) for k in listed] == [(made["token_id"], "ci")]
    assert cli.json("auth", "token", "revoke", made["token_id"])["state"] == "revoked"
    names = [u["name"] for u in cli.json("auth", "user", "list")["users"]]
    assert names == ["carl", "root-admin", "vic"]


def test_through_a_server_a_missing_or_small_token_is_refused(
    cli: Cli, remote: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEEL_TOKEN", raising=False)
    result = cli("auth", "user", "list")
    assert result.exit_code == 1
    assert "requires an API token" in one_error_line(result)
    monkeypatch.setenv("KEEL_TOKEN", remote["viewer"])
    result = cli("auth", "user", "add", "mallory", "--role", "admin")
    assert result.exit_code == 1
    assert "needs the admin role" in one_error_line(result)
    assert cli("experiments", "list").exit_code == 0  # a viewer can still read
    monkeypatch.setenv("KEEL_TOKEN", "keel_" + "0" * 12 + "_" + "A" * 43)
    result = cli("experiments", "list")
    assert result.exit_code == 1
    assert "invalid API token" in one_error_line(result)


# -- keel server ---------------------------------------------------------------------------
@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what ``keel server`` would run instead of serving."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("KEEL_AUTH", "false")  # restored after the test: server() sets it
    return calls


def test_binding_the_network_without_auth_is_refused(cli: Cli, no_uvicorn: list) -> None:
    result = cli("server", "--host", "0.0.0.0")
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "--auth" in line
    assert "--insecure" in line
    assert no_uvicorn == []


def test_insecure_serves_the_network_with_a_warning(cli: Cli, no_uvicorn: list) -> None:
    import os

    result = cli("server", "--host", "0.0.0.0", "--insecure")
    assert result.exit_code == 0, result.output
    assert "WITHOUT authentication" in result.stderr
    assert [c["host"] for c in no_uvicorn] == ["0.0.0.0"]
    assert os.environ["KEEL_AUTH"] == "false"


def test_auth_on_the_network_serves_and_says_how_to_make_the_first_admin(
    cli: Cli, no_uvicorn: list
) -> None:
    import os

    result = cli("server", "--host", "0.0.0.0", "--auth")
    assert result.exit_code == 0, result.output
    assert "auth: on" in result.stdout
    assert "keel auth user add admin --role admin" in result.stdout
    assert "keel auth token create --user admin" in result.stdout
    assert "WITHOUT" not in result.stderr
    assert os.environ["KEEL_AUTH"] == "true"
    assert len(no_uvicorn) == 1
    _admin(cli)
    result = cli("server", "--auth")
    assert result.exit_code == 0
    assert "no users yet" not in result.stdout


def test_loopback_is_served_without_auth_unless_asked(cli: Cli, no_uvicorn: list) -> None:
    result = cli("server")
    assert result.exit_code == 0, result.output
    assert "auth: on" not in result.stdout
    assert [c["host"] for c in no_uvicorn] == ["127.0.0.1"]
