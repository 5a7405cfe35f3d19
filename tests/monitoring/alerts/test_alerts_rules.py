"""Alert rules: fields, durations, the YAML format, and bad input named by rule and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.errors import InvalidInput
from keel.monitoring.alerts.rules import (
    FIGURE_NAMES,
    AlertRule,
    format_duration,
    parse_duration,
    parse_rule,
)
from keel.monitoring.alerts.rules_file import parse_rules_document, read_rules_file

BASE = {"name": "churn-drift", "deployment": "churn-prod", "metric": "drift_share",
        "op": ">", "threshold": 0.3}  # fmt: skip

YAML = """
rules:
  - name: churn-drift
    deployment: churn-prod
    metric: drift_share
    op: ">"
    threshold: 0.3
    window: 1h
    for: 2
    severity: critical
    cooldown: 30m
    notifiers:
      - log
      - {type: slack, url_env: SLACK_WEBHOOK_URL}
      - {type: email, host: smtp.example.com, port: 587, starttls: true,
         from: keel@example.com, to: [oncall@example.com], username: keel,
         password_env: SMTP_PASSWORD}
    actions: [rollback, {type: trigger, payload: {reason: drift}}]
  - name: churn-latency
    deployment: churn-prod
    metric: latency_p99_ms
    op: ">="
    threshold: 250
    window: 5m
"""


def test_a_description_keeps_its_newlines_and_tabs() -> None:
    assert parse_rule({**BASE, "description": "line one\n\tline two"}).description == (
        "line one\n\tline two"
    )


def test_a_rule_has_defaults_and_round_trips_through_its_dict() -> None:
    rule = parse_rule(BASE)
    assert (rule.window_s, rule.for_, rule.severity, rule.enabled) == (3600.0, 1, "warning", True)
    assert rule.notifiers == ({"type": "log", "level": "warning"},)
    assert rule.condition() == "drift_share > 0.3 over 1h"
    again = AlertRule.from_dict(rule.to_dict())
    assert again == rule
    assert "drift_share" in FIGURE_NAMES


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("1.5h", 5400), (90, 90)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text, what="window") == seconds


def test_durations_format_in_their_largest_whole_unit() -> None:
    assert [format_duration(s) for s in (0, 90, 300, 3600, 86400, 5400)] == [
        "0s", "90s", "5m", "1h", "1d", "90m"
    ]  # fmt: skip


def test_a_yaml_file_gives_every_rule(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(YAML)
    first, second = read_rules_file(path)
    assert (first.name, first.for_, first.severity, first.cooldown_s) == (
        "churn-drift", 2, "critical", 1800.0
    )  # fmt: skip
    assert [n["type"] for n in first.notifiers] == ["log", "slack", "email"]
    assert first.actions[1] == {"type": "trigger", "payload": {"reason": "drift"}}
    assert (second.metric, second.op, second.window_s) == ("latency_p99_ms", ">=", 300.0)
    masked = first.masked()["notifiers"][2]
    assert masked["username"] == "***"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": ""}, "name"),
        ({"name": "../etc"}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"deployment": None}, "deployment"),
        ({"metric": "nope"}, "metric 'nope' is not a monitored figure"),
        ({"op": "=>"}, "op must be one of"),
        ({"threshold": "high"}, "threshold must be a number"),
        ({"threshold": float("nan")}, "threshold must be finite"),
        ({"threshold": True}, "threshold must be a number"),
        ({"window": "forever"}, "window is a duration"),
        ({"window": "0s"}, "window must be from"),
        ({"window": "400d"}, "window must be from"),
        ({"for": 0}, "for must be an integer"),
        ({"for": 2.5}, "for must be an integer"),
        ({"severity": "page"}, "severity must be one of"),
        ({"repeat": "5s"}, "repeat is 0 (never) or at least 1m"),
        ({"enabled": "yes"}, "enabled is true or false"),
        ({"description": "x" * 3000}, "description"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"notifiers": ["pager"]}, "unknown notifier type 'pager'"),
        ({"notifiers": [{"type": "webhook"}]}, "exactly one of url and url_env"),
        ({"notifiers": [{"type": "webhook", "url": "ftp://x"}]}, "http(s):// URL"),
        ({"notifiers": [{"type": "webhook", "url": "http://x", "timeout": 999}]}, "timeout"),
        (
            {"notifiers": [{"type": "webhook", "url": "http://x", "headers": {"a\n": "b"}}]},
            "header name",
        ),
        (
            {"notifiers": [{"type": "email", "host": "h", "from": "nobody", "to": ["a@b.c"]}]},
            "from is an e-mail address",
        ),
        ({"notifiers": [{"type": "email", "host": "h", "from": "a@b.c", "to": []}]}, "to is 1"),
        ({"notifiers": ["log"] * 21}, "at most 20"),
        ({"actions": ["explode"]}, "unknown action 'explode'"),
        ({"actions": [{"type": "rollback", "force": True}]}, "unknown field(s) force"),
        ({"actions": [{"type": "trigger", "payload": {"n": 2**70}}]}, "payload is not plain JSON"),
        ({"actions": [{"type": "trigger", "payload": {"n": float("inf")}}]}, "plain JSON"),
        ({"actions": [42]}, "type name or a mapping"),
        # NUL: PostgreSQL refuses it in text (a DataError, a 500 through the server)
        ({"description": "drift\x00"}, "without control characters"),
        ({"notifiers": [{"type": "webhook", "url": "https://h.example.com/\x00"}]}, "url must"),
        (
            {"notifiers": [{"type": "email", "host": "h", "from": "a\x00@b.c", "to": "x@y.z"}]},
            "from is an e-mail address",
        ),
        (
            {
                "notifiers": [
                    {
                        "type": "email",
                        "host": "h",
                        "from": "a@b.c",
                        "to": "x@y.z",
                        "username": "u",
                        "password": "p\x00",
                    }
                ]
            },
            "without control characters",
        ),
    ],
)
def test_bad_fields_are_invalid_input_naming_the_rule_and_field(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rule({**BASE, **change})
    assert message in str(caught.value)
    if "name" not in change:
        assert "churn-drift" in str(caught.value)


def test_bad_documents_name_the_rule_by_position_and_name() -> None:
    with pytest.raises(InvalidInput, match=r"'b' \(rule #2 of the rules document\): op"):
        parse_rules_document({"rules": [BASE | {"name": "a"}, BASE | {"name": "b", "op": "~"}]})
    with pytest.raises(InvalidInput, match="more than once"):
        parse_rules_document([BASE, BASE])
    with pytest.raises(InvalidInput, match="unknown top-level"):
        parse_rules_document({"rules": [], "extra": 1})
    with pytest.raises(InvalidInput, match="list of rules"):
        parse_rules_document("rules")
    with pytest.raises(InvalidInput, match="rule #1 of the rules document is a mapping"):
        parse_rules_document([["not", "a", "mapping"]])


def test_bad_files_are_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no alert rules file"):
        read_rules_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [ {name: a\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        read_rules_file(broken)
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        read_rules_file(hostile)
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * 1_000_001)
    with pytest.raises(InvalidInput, match="at most"):
        read_rules_file(huge)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00rules")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_rules_file(binary)


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    levels = 6  # 531,441 values: over the limit, yet cheap enough to expand if unguarded
    # every anchor inside the trigger's payload, as a hostile file would put them
    lol = ", ".join(['"lol"'] * 9)
    body = ["rules:", "  - name: laughs", "    deployment: churn-prod", "    metric: drift_share"]
    body += ["    op: '>'", "    threshold: 0.3", "    actions:", "      - type: trigger"]
    body += ["        payload:", f"          l0: &l0 [{lol}]"]
    body += [f"          l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    bomb = tmp_path / "laughs.yaml"
    bomb.write_text("\n".join(body) + "\n")
    with pytest.raises(InvalidInput, match="expands to more than 200,000 values"):
        read_rules_file(bomb)
    shared = tmp_path / "shared.yaml"  # an alias used as people use them still works
    shared.write_text(
        "rules:\n"
        "  - {name: a, deployment: d, metric: drift_share, op: '>', threshold: 0.3,\n"
        "     notifiers: &team [log, {type: webhook, url_env: TEAM_HOOK}]}\n"
        "  - {name: b, deployment: d, metric: error_rate, op: '>', threshold: 0.1,\n"
        "     notifiers: *team}\n"
    )
    first, second = read_rules_file(shared)
    assert first.notifiers == second.notifiers
    assert second.notifiers[1]["url_env"] == "TEAM_HOOK"
