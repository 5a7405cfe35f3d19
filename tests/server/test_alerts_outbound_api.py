"""The alerts REST API refuses a rule whose webhook the outbound policy refuses: a 400
JSON error naming the host and the setting, never a 500, and nothing stored."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1/alerts"
RULE = {"name": "churn-drift", "deployment": "churn-prod", "metric": "drift_share", "op": ">",
        "threshold": 0.3}  # fmt: skip


@pytest.fixture
def client(keel_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from keel.config import load_settings, reset_settings
    from keel.server import create_app

    monkeypatch.delenv("KEEL_OUTBOUND_ALLOW", raising=False)
    monkeypatch.delenv("KEEL_OUTBOUND_ALLOW_LOCAL", raising=False)
    reset_settings()
    app = create_app(settings=load_settings(tmp_path / "home"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("field", "spec", "named"),
    [
        ("notifiers", {"type": "webhook", "url": "http://127.0.0.1:6379/"}, "127.0.0.1"),
        ("notifiers", {"type": "slack", "url": "http://[::ffff:10.0.0.1]/x"}, "10.0.0.1"),
        ("actions", {"type": "webhook", "url": "http://169.254.169.254/"}, "169.254.169.254"),
        ("notifiers", {"type": "webhook", "url": "gopher://127.0.0.1:6379/_x"}, "http(s)://"),
    ],
)
def test_a_refused_webhook_is_a_400_json_error_and_nothing_is_stored(
    client: TestClient, field: str, spec: dict[str, Any], named: str
) -> None:
    r = client.post(f"{API}/rules", json={"rules": [{**RULE, field: [spec]}]})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error_code"] == "INVALID_INPUT"
    assert named in body["message"]
    assert "churn-drift" in body["message"]
    if not spec["url"].startswith("gopher"):
        assert "KEEL_OUTBOUND_ALLOW" in body["message"]
    assert client.get(f"{API}/rules").json() == {"rules": []}


def test_the_servers_allow_list_lets_the_rule_in(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.config import reset_settings

    rule = {**RULE, "notifiers": [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}]}
    assert client.post(f"{API}/rules", json={"rules": [rule]}).status_code == 400
    monkeypatch.setenv("KEEL_OUTBOUND_ALLOW", "127.0.0.1")
    reset_settings()
    r = client.post(f"{API}/rules", json={"rules": [rule]})
    assert r.status_code == 201, r.text
    reset_settings()
