"""``keel alerts …``: rules from flags and YAML, alerts listed, shown and acknowledged."""

from __future__ import annotations

from pathlib import Path

from cli_support import Cli, one_error_line

ADD = ("alerts", "rule", "add", "churn-drift", "--deployment", "churn-prod",
       "--metric", "drift_share", "--op", ">", "--threshold", "0.3", "--window", "1h",
       "--for", "2", "--severity", "critical")  # fmt: skip


def _fire(value: float) -> None:
    from keel.monitoring.alerts.runner import run_pass
    from keel.stores import current_stores

    run_pass(current_stores(), figure_source=lambda *_, **__: {"drift_share": value})


def test_rule_add_list_show_and_delete(cli: Cli) -> None:
    result = cli(*ADD, "--notifier", "log", "--notifier",
                 '{"type": "webhook", "url": "https://hooks.example.com/T/secret"}',
                 "--action", "rollback")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "churn-drift: drift_share > 0.3 over 1h on churn-prod, for 2, critical" in result.stdout
    listed = cli("alerts", "rule", "list")
    assert "churn-drift" in listed.stdout
    assert "log, webhook" in listed.stdout
    (rule,) = cli.json("alerts", "rule", "list")["rules"]
    assert (rule["for"], rule["window"], rule["actions"]) == (2, "1h", [{"type": "rollback"}])
    shown = cli("alerts", "rule", "show", "churn-drift").stdout
    assert "https://hooks.example.com/***" in shown
    assert "secret" not in shown
    assert cli.json("alerts", "rule", "show", "churn-drift")["notifiers"][1]["url"].endswith(
        "/secret"
    )
    again = cli(*ADD)
    assert again.exit_code == 2
    assert "already exists" in one_error_line(again)
    assert cli(*ADD, "--threshold", "0.5", "--replace").exit_code == 0
    assert cli.json("alerts", "rule", "delete", "churn-drift") == {"deleted": "churn-drift"}
    assert "no alert rules yet" in cli("alerts", "rule", "list").stdout


def test_bad_flags_are_one_clear_error_line(cli: Cli) -> None:
    cases = {
        ("--op", "=>"): "op must be one of",
        ("--window", "soon"): "window is a duration",
        ("--severity", "page"): "severity must be one of",
        ("--notifier", "{not json"): "is not a JSON object",
        ("--notifier", "[1]"): "",
        ("--action", "explode"): "unknown action 'explode'",
        ("--metric", "nope"): "is not a monitored figure",
    }
    for extra, message in cases.items():
        args = list(ADD)
        if extra[0] in args:
            i = args.index(extra[0])
            args[i + 1] = extra[1]
        else:
            args += list(extra)
        result = cli(*args)
        assert result.exit_code == 2, (extra, result.output)
        assert message in one_error_line(result), extra


def test_load_a_yaml_file(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "rules:\n"
        "  - {name: a, deployment: churn-prod, metric: error_rate, op: '>', threshold: 0.1}\n"
        "  - {name: b, deployment: churn-prod, metric: latency_p99_ms, op: '>', threshold: 200}\n"
    )
    result = cli("alerts", "rule", "load", str(path))
    assert result.exit_code == 0, result.output
    assert "loaded 2 alert rule(s)" in result.stdout
    assert [r["name"] for r in cli.json("alerts", "rule", "load", str(path))["rules"]] == ["a", "b"]
    path.write_text("rules: [{name: c, op: '>'}]\n")
    bad = cli("alerts", "rule", "load", str(path))
    assert bad.exit_code == 2
    assert "alert rule 'c'" in one_error_line(bad)
    missing = cli("alerts", "rule", "load", str(tmp_path / "nope.yaml"))
    assert "no alert rules file" in one_error_line(missing)


def test_alerts_list_show_events_and_ack(cli: Cli) -> None:
    assert cli(*ADD[:-4], "--notifier", "log").exit_code == 0  # for 1, warning
    assert "no alerts" in cli("alerts", "list").stdout
    _fire(0.9)
    listed = cli("alerts", "list", "--state", "firing")
    assert "churn-drift" in listed.stdout
    assert "firing" in listed.stdout
    (alert,) = cli.json("alerts", "list", "--state", "firing")["alerts"]
    assert cli.json("alerts", "list", "--state", "resolved")["alerts"] == []
    shown = cli("alerts", "show", alert["alert_id"])
    assert "firing, drift_share = 0.9" in shown.stdout
    assert [e["kind"] for e in cli.json("alerts", "show", alert["alert_id"])["events"]] == [
        "firing", "notified"
    ]  # fmt: skip
    acked = cli.json("alerts", "ack", alert["alert_id"])
    assert acked["acknowledged_by"]
    twice = cli("alerts", "ack", alert["alert_id"])
    assert twice.exit_code == 1
    assert "acknowledged by" in one_error_line(twice)
    assert "acknowledged" in cli("alerts", "events", "--rule", "churn-drift").stdout
    assert cli("alerts", "list", "--state", "exploded").exit_code == 2
    unknown = cli("alerts", "ack", "0" * 32)
    assert unknown.exit_code == 2
    assert "no alert" in one_error_line(unknown)
    assert "32 hex" in one_error_line(cli("alerts", "show", "x"))
