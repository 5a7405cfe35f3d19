"""The alerts REST API: status codes, bodies naming the bad field, roles and actors."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from keel.governance.auth import Role, auth_store
from keel.governance.sql_audit import SqlAuditStore

API = "/api/v1/alerts"
RULE = {"name": "churn-drift", "deployment": "churn-prod", "metric": "drift_share", "op": ">",
        "threshold": 0.3, "window": "1h", "for": 2, "severity": "critical"}  # fmt: skip


@pytest.fixture
def client(keel_env: Any, tmp_path: Path) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(tmp_path / "home"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _fire(client: TestClient, value: float) -> None:
    from keel.monitoring.alerts.runner import run_pass

    stores = client.app.state.stores  # type: ignore[attr-defined]
    run_pass(stores, figure_source=lambda *_, **__: {"drift_share": value})


def test_rules_are_added_listed_read_and_deleted(client: TestClient) -> None:
    r = client.post(f"{API}/rules", json={"rules": [RULE]}, headers={"Keel-Actor": "ada"})
    assert r.status_code == 201, r.text
    (rule,) = r.json()["rules"]
    assert (rule["for"], rule["window"], rule["created_by"]) == (2, "1h", "ada")
    assert rule["notifiers"] == [{"type": "log", "level": "warning"}]
    assert client.get(f"{API}/rules").json()["rules"] == [rule]
    assert client.get(f"{API}/rules", params={"deployment": "other"}).json() == {"rules": []}
    assert client.get(f"{API}/rules/churn-drift").json() == rule
    again = client.post(f"{API}/rules", json={"rules": [RULE]})
    assert again.status_code == 409
    assert again.json()["error_code"] == "ALREADY_EXISTS"
    replaced = client.post(
        f"{API}/rules", json={"rules": [{**RULE, "threshold": 0.5}], "replace": True}
    )
    assert replaced.json()["rules"][0]["threshold"] == 0.5
    assert client.delete(f"{API}/rules/churn-drift").status_code == 204
    missing = client.get(f"{API}/rules/churn-drift")
    assert missing.status_code == 404
    assert "churn-drift" in missing.json()["message"]
    assert client.delete(f"{API}/rules/churn-drift").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"rules": [{**RULE, "metric": "nope"}]}, 400, "metric 'nope' is not a monitored figure"),
        ({"rules": [{**RULE, "window": "forever"}]}, 400, "window is a duration"),
        ({"rules": [{**RULE, "notifiers": [{"type": "webhook"}]}]}, 400, "url and url_env"),
        ({"rules": [{**RULE, "actions": ["explode"]}]}, 400, "unknown action 'explode'"),
        ({"rules": [{**RULE, "actions": [{"type": "trigger", "payload": {"n": 2**70}}]}]}, 400, ""),
        ({"rules": [{**RULE, "name": "../x"}]}, 400, "name"),
        ({"rules": [{**RULE, "op": "~"}]}, 400, ""),
        ({"rules": [{**RULE, "colour": "red"}]}, 400, ""),
        ({"rules": [RULE, RULE]}, 400, "twice"),
        ({"rules": []}, 400, ""),
        ({"rules": "all"}, 400, ""),
        ({}, 400, ""),
    ],
)
def test_bad_rules_are_400_naming_the_field(
    client: TestClient, body: dict[str, Any], status: int, message: str
) -> None:
    r = client.post(f"{API}/rules", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error_code"] == "INVALID_INPUT"
    assert message in r.json()["message"]


def test_alerts_are_listed_read_acknowledged_and_their_events_kept(client: TestClient) -> None:
    client.post(f"{API}/rules", json={"rules": [{**RULE, "for": 1, "notifiers": []}]})
    _fire(client, 0.9)
    (alert,) = client.get(API, params={"state": "firing"}).json()["alerts"]
    assert client.get(API, params={"state": "pending"}).json() == {"alerts": []}
    assert client.get(f"{API}/{alert['alert_id']}").json() == alert
    acked = client.post(f"{API}/{alert['alert_id']}/ack", headers={"Keel-Actor": "ada"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "ada"
    twice = client.post(f"{API}/{alert['alert_id']}/ack")
    assert twice.status_code == 409
    events = client.get(f"{API}/events", params={"alert_id": alert["alert_id"]}).json()["events"]
    assert [e["kind"] for e in events] == ["firing", "acknowledged"]
    assert client.get(f"{API}/{'0' * 32}").status_code == 404
    assert client.post(f"{API}/{'0' * 32}/ack").status_code == 404
    assert client.get(f"{API}/not-an-id").status_code in (400, 422)
    assert client.get(API, params={"state": "exploded"}).status_code in (400, 422)
    assert client.get(API, params={"limit": 0}).status_code in (400, 422)
    assert client.get(f"{API}/events", params={"alert_id": "0" * 32}).status_code == 404


def test_viewers_read_and_editors_write_with_auth_on(keel_env: Any, tmp_path: Path) -> None:
    from keel.config import load_settings
    from keel.server import create_app
    from keel.stores import open_stores

    settings = load_settings(tmp_path / "home")
    stores = open_stores(settings)
    auth = auth_store(stores)
    auth.create_user("eve", role=Role.EDITOR)
    auth.create_user("vic")
    tokens = {name: auth.create_token(name).token for name in ("eve", "vic")}
    app = create_app(settings=settings, stores=stores, auth=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        as_vic = {"Authorization": f"Bearer {tokens['vic']}", "Keel-Actor": "mallory"}
        as_eve = {"Authorization": f"Bearer {tokens['eve']}", "Keel-Actor": "mallory"}
        assert (
            client.post(f"{API}/rules", json={"rules": [RULE]}, headers=as_vic).status_code == 403
        )
        r = client.post(f"{API}/rules", json={"rules": [RULE]}, headers=as_eve)
        assert r.status_code == 201
        assert r.json()["rules"][0]["created_by"] == "eve"  # the token's user, not the header
        assert client.get(f"{API}/rules", headers=as_vic).status_code == 200
        assert client.get(f"{API}/rules").status_code == 401
        assert client.delete(f"{API}/rules/churn-drift", headers=as_vic).status_code == 403
        assert client.delete(f"{API}/rules/churn-drift", headers=as_eve).status_code == 204
    actors = {e.actor for e in SqlAuditStore(stores.tracking.db).list_entries(action="alert_rule")}
    assert actors == {"eve"}


SECRET_RULE = {
    **RULE,
    "notifiers": [
        {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/s3cr3t"},
        {"type": "webhook", "url": "https://hooks.example.com/k?token=s3cr3t",
         "headers": {"Authorization": "Bearer s3cr3t"}},
        {"type": "webhook", "url_env": "KEEL_TEST_HOOK_URL"},
        {"type": "email", "host": "smtp.example.com", "from": "keel@example.com",
         "to": ["oncall@example.com"], "username": "keel", "password": "s3cr3t"},
    ],
    "actions": [{"type": "webhook", "url": "https://ci.example.com/hooks/s3cr3t"}],
}  # fmt: skip


@pytest.fixture
def secured(keel_env: Any, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict]]]:
    from keel.config import load_settings
    from keel.server import create_app
    from keel.stores import open_stores

    settings = load_settings(tmp_path / "home")
    stores = open_stores(settings)
    auth = auth_store(stores)
    roles = {"ada": Role.ADMIN, "eve": Role.EDITOR, "mo": Role.EDITOR, "vic": Role.VIEWER}
    for user, role in roles.items():
        auth.create_user(user, role=role)
    headers = {u: {"Authorization": f"Bearer {auth.create_token(u).token}"} for u in roles}
    app = create_app(settings=settings, stores=stores, auth=True)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, headers


def test_rule_secrets_are_shown_to_admins_and_the_creator_and_masked_for_others(
    secured: tuple[TestClient, dict[str, dict]],
) -> None:
    from keel.monitoring.alerts.rules import AlertRule

    client, as_ = secured
    created = client.post(f"{API}/rules", json={"rules": [SECRET_RULE]}, headers=as_["eve"])
    assert created.status_code == 201, created.text
    assert created.json()["rules"][0]["notifiers"][0]["url"].endswith("/s3cr3t")
    for user in ("ada", "eve"):
        rule = client.get(f"{API}/rules/churn-drift", headers=as_[user]).json()
        assert rule["notifiers"][0]["url"] == SECRET_RULE["notifiers"][0]["url"]
        assert rule["notifiers"][3]["password"] == "s3cr3t"
    for user in ("vic", "mo"):
        for rule in (
            client.get(f"{API}/rules/churn-drift", headers=as_[user]).json(),
            client.get(f"{API}/rules", headers=as_[user]).json()["rules"][0],
        ):
            assert "s3cr3t" not in str(rule), user
            slack, hook, from_env, email = rule["notifiers"]
            assert slack["url"] == "https://hooks.slack.com/***"
            assert hook["url"] == "https://hooks.example.com/***"
            assert hook["headers"] == {"Authorization": "***"}
            assert from_env["url_env"] == "KEEL_TEST_HOOK_URL"  # a variable's name stays
            assert (email["username"], email["password"]) == ("***", "***")
            assert email["host"] == "smtp.example.com"
            assert rule["actions"][0]["url"] == "https://ci.example.com/***"
            AlertRule.from_dict(rule)  # the REST client still reads a masked rule


def test_a_masked_rule_written_back_is_refused_and_the_secret_kept(
    secured: tuple[TestClient, dict[str, dict]],
) -> None:
    client, as_ = secured
    client.post(f"{API}/rules", json={"rules": [SECRET_RULE]}, headers=as_["eve"])
    masked = client.get(f"{API}/rules/churn-drift", headers=as_["mo"]).json()
    for key in ("created_at", "updated_at", "created_by"):
        masked.pop(key)
    back = client.post(f"{API}/rules", json={"rules": [masked], "replace": True}, headers=as_["mo"])
    assert back.status_code == 400, back.text
    assert back.json()["error_code"] == "INVALID_INPUT"
    assert "url is the masked value" in back.json()["message"]
    kept = client.get(f"{API}/rules/churn-drift", headers=as_["ada"]).json()
    assert kept["notifiers"] == _notifiers(SECRET_RULE)


def _notifiers(rule: dict[str, Any]) -> list[dict[str, Any]]:
    from keel.monitoring.alerts.rules import parse_rule

    return [dict(n) for n in parse_rule(rule).notifiers]
