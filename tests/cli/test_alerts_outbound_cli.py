"""``keel alerts rule add|load``: a webhook URL the outbound policy refuses is one clear
error line (exit 2), nothing is stored, and the allow-list setting lets it in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli, one_error_line

ADD = ("alerts", "rule", "add", "churn-drift", "--deployment", "churn-prod",
       "--metric", "drift_share", "--op", ">", "--threshold", "0.3")  # fmt: skip


@pytest.fixture(autouse=True)
def _no_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_OUTBOUND_ALLOW", raising=False)
    monkeypatch.delenv("KEEL_OUTBOUND_ALLOW_LOCAL", raising=False)


def _hook(url: str) -> str:
    return json.dumps({"type": "webhook", "url": url})


def test_a_metadata_service_notifier_is_refused_and_not_stored(cli: Cli) -> None:
    result = cli(*ADD, "--notifier", _hook("http://169.254.169.254/latest/meta-data/"))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "alert rule 'churn-drift': notifier #1 (webhook)" in line
    assert "169.254.169.254 is link-local" in line
    assert "KEEL_OUTBOUND_ALLOW" in line
    assert cli.json("alerts", "rule", "list")["rules"] == []


def test_a_loopback_webhook_action_is_refused_with_its_login_masked(cli: Cli) -> None:
    result = cli(*ADD, "--action", _hook("http://admin:hunter2@localhost:8080/x?t=s3cret"))
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "action #1 (webhook): http://localhost:8080 is refused" in line
    assert "localhost resolves to 127.0.0.1" in line
    for secret in ("admin", "hunter2", "s3cret"):
        assert secret not in line


def test_a_slack_notifier_to_a_private_network_is_refused_in_a_rules_file(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "rules:\n"
        "  - {name: a, deployment: churn-prod, metric: error_rate, op: '>', threshold: 0.1}\n"
        "  - name: b\n    deployment: churn-prod\n    metric: error_rate\n    op: '>'\n"
        "    threshold: 0.2\n"
        "    notifiers: [{type: slack, url: 'http://[fd00::5]/services/T/B/x'}]\n"
    )
    result = cli("alerts", "rule", "load", str(path))
    assert result.exit_code == 2, result.output
    assert "alert rule 'b': notifier #1 (slack): http://[fd00::5] is refused" in (
        one_error_line(result)
    )
    assert cli.json("alerts", "rule", "list")["rules"] == []  # all or none


def test_the_allow_list_lets_a_local_receiver_in(cli: Cli) -> None:
    hook = _hook("http://127.0.0.1:9/keel")
    assert cli(*ADD, "--notifier", hook).exit_code == 2
    result = cli(*ADD, "--notifier", hook, env={"KEEL_OUTBOUND_ALLOW": "127.0.0.0/8"})
    assert result.exit_code == 0, result.output
    (rule,) = cli.json("alerts", "rule", "list")["rules"]
    assert rule["notifiers"][0]["url"] == "http://127.0.0.1:9/keel"
    allowed_all = cli(*ADD, "--replace", "--action", _hook("http://10.0.0.7/hook"),
                      env={"KEEL_OUTBOUND_ALLOW_LOCAL": "true"})  # fmt: skip
    assert allowed_all.exit_code == 0, allowed_all.output
