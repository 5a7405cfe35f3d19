"""Notifiers against real local receivers: an HTTP server and an SMTP server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from tests.monitoring.alerts.alerts_receivers import http_receiver, smtp_receiver

from keel.errors import InvalidInput, KeelError
from keel.monitoring.alerts.entities import Alert, AlertState
from keel.monitoring.alerts.notifiers import Notice, notify
from keel.monitoring.alerts.rules import parse_rule
from keel.monitoring.alerts.specs import check_notifier

# webhooks here reach receivers on 127.0.0.1, which Keel refuses unless allow-listed
pytestmark = pytest.mark.usefixtures("outbound_loopback")

RULE = parse_rule({"name": "churn-drift", "deployment": "churn-prod", "metric": "drift_share",
                   "op": ">", "threshold": 0.3, "severity": "critical",
                   "description": "inputs drifted"})  # fmt: skip
ALERT = Alert("a" * 32, "churn-drift", "churn-prod", "drift_share", "critical",
              AlertState.FIRING, 0.42, 2, 1_800_000_000_000, 1_800_000_015_000)  # fmt: skip
NOTICE = Notice("firing", RULE, ALERT)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_json_webhook_posts_the_documented_body_with_its_headers() -> None:
    with http_receiver() as hook:
        spec = check_notifier({"type": "webhook", "url": f"{hook.url}/keel?token=s3cret",
                               "headers": {"X-Team": "ml"}})  # fmt: skip
        detail = notify(spec, NOTICE)
    (request,) = hook.requests
    assert request["path"] == "/keel?token=s3cret"
    assert request["headers"]["X-Team"] == "ml"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["json"]
    assert {k: body[k] for k in ("source", "event", "alert_id", "rule", "deployment", "metric",
                                 "op", "threshold", "window", "value", "severity", "state")} == {
        "source": "keel", "event": "firing", "alert_id": "a" * 32, "rule": "churn-drift",
        "deployment": "churn-prod", "metric": "drift_share", "op": ">", "threshold": 0.3,
        "window": "1h", "value": 0.42, "severity": "critical", "state": "firing",
    }  # fmt: skip
    assert (
        body["summary"]
        == "[critical] FIRING churn-drift on churn-prod: drift_share = 0.42 (> 0.3 over 1h)"
    )
    assert detail == {"notifier": "webhook", "url": f"{hook.url}/***", "status": 200}


def test_the_slack_webhook_posts_text_and_blocks() -> None:
    with http_receiver() as hook:
        notify(check_notifier({"type": "slack", "url": f"{hook.url}/services/T/B/XYZ"}), NOTICE)
    (body,) = hook.bodies()
    assert body["text"].startswith("[critical] FIRING churn-drift")
    (block,) = body["blocks"]
    assert block["type"] == "section"
    assert block["text"]["type"] == "mrkdwn"
    assert "inputs drifted" in block["text"]["text"]


def test_a_webhook_url_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = check_notifier({"type": "webhook", "url_env": "KEEL_TEST_HOOK"})
    with pytest.raises(InvalidInput, match="KEEL_TEST_HOOK is not set"):
        notify(spec, NOTICE)
    with http_receiver() as hook:
        monkeypatch.setenv("KEEL_TEST_HOOK", f"{hook.url}/from-env")
        notify(spec, NOTICE)
    assert hook.requests[0]["path"] == "/from-env"


def test_a_failing_webhook_is_a_keel_error_that_never_shows_the_url_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with http_receiver() as hook:
        hook.status = 500
        spec = check_notifier({"type": "webhook", "url": f"{hook.url}/secret-path?token=t0k"})
        with pytest.raises(KeelError) as caught:
            notify(spec, NOTICE)
    assert "answered HTTP 500" in str(caught.value)
    down = check_notifier({"type": "slack", "url": f"http://127.0.0.1:{_closed_port()}/tok3n",
                           "timeout": 0.5})  # fmt: skip
    with pytest.raises(KeelError, match="unreachable") as unreachable:
        notify(down, NOTICE)
    # credentials before the host (user:password@) are as secret as the path
    port = _closed_port()
    userinfo = check_notifier({"type": "webhook", "url": f"http://keel:pa55@127.0.0.1:{port}/x",
                               "timeout": 0.5})  # fmt: skip
    with pytest.raises(KeelError, match="unreachable") as with_login:
        notify(userinfo, NOTICE)
    assert f"http://127.0.0.1:{port}/***" in str(with_login.value)
    for text in (str(caught.value), str(unreachable.value), str(with_login.value), caplog.text):
        assert "secret-path" not in text
        assert "t0k" not in text
        assert "tok3n" not in text
        assert "pa55" not in text


def test_email_goes_through_a_real_smtp_server_with_a_login() -> None:
    with smtp_receiver(password="hunter2") as smtp:
        spec = check_notifier({"type": "email", "host": smtp.host, "port": smtp.port,
                               "from": "keel@example.com",
                               "to": ["oncall@example.com", "ml@example.com"],
                               "username": "keel", "password": "hunter2"})  # fmt: skip
        detail = notify(spec, NOTICE)
    assert detail == {"notifier": "email", "to": ["oncall@example.com", "ml@example.com"]}
    assert smtp.logins == [("keel", "hunter2")]
    (message,) = smtp.messages
    assert message["from"] == "keel@example.com"
    assert message["to"] == ["oncall@example.com", "ml@example.com"]
    assert "Subject: [critical] FIRING churn-drift on churn-prod" in message["data"]
    assert "alert_id: " + "a" * 32 in message["data"]


def test_email_with_a_wrong_password_or_no_server_is_a_keel_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEEL_TEST_SMTP_PASSWORD", "wrong-one")
    with smtp_receiver(password="hunter2") as smtp:
        spec = check_notifier({"type": "email", "host": smtp.host, "port": smtp.port,
                               "from": "keel@example.com", "to": "oncall@example.com",
                               "username": "keel",
                               "password_env": "KEEL_TEST_SMTP_PASSWORD"})  # fmt: skip
        with pytest.raises(KeelError, match="refused the login") as caught:
            notify(spec, NOTICE)
        assert smtp.messages == []
    assert "wrong-one" not in str(caught.value)
    nowhere = check_notifier({"type": "email", "host": "127.0.0.1", "port": _closed_port(),
                              "from": "k@example.com", "to": ["o@example.com"],
                              "timeout": 1})  # fmt: skip
    with pytest.raises(KeelError, match=r"SMTP server 127\.0\.0\.1"):
        notify(nowhere, NOTICE)


def test_the_log_notifier_writes_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="keel.alerts"):
        notify(check_notifier({"type": "log", "level": "error"}), NOTICE)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "FIRING churn-drift on churn-prod" in record.getMessage()


def test_email_over_starttls_verifies_the_servers_certificate(tmp_path: Path) -> None:
    with smtp_receiver(password="hunter2", tls_folder=tmp_path) as smtp:
        base = {"type": "email", "host": smtp.host, "port": smtp.port, "starttls": True,
                "from": "keel@example.com", "to": ["oncall@example.com"],
                "username": "keel", "password": "hunter2"}  # fmt: skip
        notify(check_notifier({**base, "ca_file": smtp.ca_file}), NOTICE)
        assert len(smtp.messages) == 1
        assert smtp.logins == [("keel", "hunter2")]
        # the same server, its certificate not trusted: refused before any login
        with pytest.raises(KeelError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            notify(check_notifier(base), NOTICE)
        assert "hunter2" not in str(caught.value)
        # and without STARTTLS the server refuses to take the mail
        plain = {k: v for k, v in base.items() if k not in ("starttls", "username", "password")}
        with pytest.raises(KeelError, match="SMTP server"):
            notify(check_notifier(plain), NOTICE)
    assert len(smtp.messages) == 1
    assert smtp.logins == [("keel", "hunter2")]
