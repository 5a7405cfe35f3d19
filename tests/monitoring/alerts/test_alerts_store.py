"""The alerts store conformance suite: the same SDK calls on SQLite, PostgreSQL and REST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import KeelEnv

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.governance.audit import audit_store
from keel.governance.identity import acting_as
from keel.monitoring import alerts as ka
from keel.monitoring.alerts.rules import parse_rule

RULE = {"deployment": "churn-prod", "metric": "drift_share", "op": ">", "threshold": 0.3}


def _database_stores(env: KeelEnv) -> Any:
    """The stores on the metadata database: the server's own one behind it for "rest"."""
    from keel.config import load_settings
    from keel.stores import current_stores, open_stores

    if env.dialect == "rest":
        home = env.home.parent / "server-home"
        return open_stores(load_settings(home, tracking_uri=f"sqlite:///{home / 'keel.db'}"))
    return current_stores()


def _fire(env: KeelEnv, name: str, value: float) -> None:
    """Evaluate on the metadata database directly (as keel server's job does)."""
    from keel.monitoring.alerts.runner import run_pass

    run_pass(_database_stores(env), figure_source=lambda *_, **__: {"drift_share": value})


def audit_log(env: KeelEnv, action: str) -> list[Any]:
    return audit_store(_database_stores(env)).list_entries(action=action)


def test_add_get_list_replace_and_delete_rules(backend: KeelEnv) -> None:
    rule = ka.add_alert_rule("churn-drift", window="30m", for_=2, severity="critical", **RULE)
    assert (rule.name, rule.window, rule.for_, rule.severity) == (
        "churn-drift",
        "30m",
        2,
        "critical",
    )
    assert rule.created_at > 0
    assert rule.created_by
    assert ka.get_alert_rule("churn-drift") == rule
    ka.add_alert_rule("other", **{**RULE, "deployment": "fraud-prod"})
    assert [r.name for r in ka.list_alert_rules()] == ["churn-drift", "other"]
    assert [r.name for r in ka.list_alert_rules("fraud-prod")] == ["other"]
    with pytest.raises(AlreadyExists, match="churn-drift"):
        ka.add_alert_rule("churn-drift", **RULE)
    replaced = ka.add_alert_rule("churn-drift", replace=True, **{**RULE, "threshold": 0.5})
    assert replaced.threshold == 0.5
    assert replaced.created_at == rule.created_at
    ka.delete_alert_rule("other")
    with pytest.raises(NotFound, match="other"):
        ka.get_alert_rule("other")
    with pytest.raises(NotFound):
        ka.delete_alert_rule("other")
    actions = [e.action for e in audit_log(backend, "alert_rule")]
    assert actions == ["alert_rule.create", "alert_rule.create", "alert_rule.replace",
                       "alert_rule.delete"]  # fmt: skip


def test_secrets_are_masked_in_the_audit_log(backend: KeelEnv) -> None:
    hook = {"type": "webhook", "url": "https://hooks.example.com/T0/secret-token"}
    mail = {"type": "email", "host": "smtp.example.com", "from": "k@example.com",
            "to": ["o@example.com"], "username": "keel", "password": "hunter2"}  # fmt: skip
    ka.add_alert_rule("masked", notifiers=[hook, mail], **RULE)
    assert ka.get_alert_rule("masked").notifiers[0]["url"] == hook["url"]  # stored as given
    (entry,) = audit_log(backend, "alert_rule")
    text = str(entry.change)
    assert "secret-token" not in text
    assert "hunter2" not in text
    assert "https://hooks.example.com/***" in text


def test_load_a_yaml_file_replaces_by_name_all_or_nothing(backend: KeelEnv, tmp_path: Path) -> None:
    ka.add_alert_rule("a", **RULE)
    good = tmp_path / "good.yaml"
    good.write_text(
        "rules:\n"
        "  - {name: a, deployment: churn-prod, metric: error_rate, op: '>', threshold: 0.1}\n"
        "  - {name: b, deployment: churn-prod, metric: latency_p99_ms, op: '>', threshold: 200,"
        " window: 5m, for: 3}\n"
    )
    loaded = ka.load_alert_rules(good)
    assert [(r.name, r.metric) for r in loaded] == [("a", "error_rate"), ("b", "latency_p99_ms")]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- {name: c, deployment: churn-prod, metric: error_rate, op: '>', threshold: 0.1}\n"
        "- {name: d, deployment: churn-prod, metric: error_rate, op: '>', threshold: x}\n"
    )
    with pytest.raises(InvalidInput, match=r"alert rule 'd' \(rule #2 of .*bad.yaml\): threshold"):
        ka.load_alert_rules(bad)
    assert [r.name for r in ka.list_alert_rules()] == ["a", "b"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: ka.get_alert_rule("../x"), InvalidInput),
        (lambda: ka.get_alert_rule("x" * 500), InvalidInput),
        (lambda: ka.get_alert_rule("missing"), NotFound),
        (lambda: ka.list_alert_rules("bad name"), InvalidInput),
        (lambda: ka.list_alerts(state="exploded"), InvalidInput),
        (lambda: ka.list_alerts(limit=0), InvalidInput),
        (lambda: ka.list_alerts(limit=10**9), InvalidInput),
        (lambda: ka.list_alerts(limit=True), InvalidInput),
        (lambda: ka.get_alert("nope"), InvalidInput),
        (lambda: ka.get_alert("0" * 32), NotFound),
        (lambda: ka.acknowledge_alert("0" * 32), NotFound),
        (lambda: ka.acknowledge_alert("'; drop table alerts; --"), InvalidInput),
        (lambda: ka.get_alert_events(alert_id="0" * 32), NotFound),
        (lambda: ka.add_alert_rule("x", **{**RULE, "metric": "nope"}), InvalidInput),
        (lambda: ka.add_alert_rule("x", **{**RULE, "threshold": float("inf")}), InvalidInput),
        (lambda: ka.add_alert_rule("", **RULE), InvalidInput),
    ],
)
def test_bad_arguments_are_the_same_error_on_every_backend(
    backend: KeelEnv, call: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        call()  # type: ignore[operator]


def test_alerts_are_listed_acknowledged_once_and_their_events_kept(backend: KeelEnv) -> None:
    ka.add_alert_rule("churn-drift", notifiers=[], **RULE)
    _fire(backend, "churn-drift", 0.9)
    (alert,) = ka.list_alerts(state="firing")
    assert (alert.rule, alert.value, alert.state.value) == ("churn-drift", 0.9, "firing")
    assert ka.get_alert(alert.alert_id) == alert
    assert ka.list_alerts(state="pending") == []
    assert ka.list_alerts(rule="churn-drift") == [alert]
    with acting_as("ada"):
        acked = ka.acknowledge_alert(alert.alert_id)
    assert acked.acknowledged_by == "ada"
    with pytest.raises(Conflict, match="acknowledged by ada"):
        ka.acknowledge_alert(alert.alert_id)
    _fire(backend, "churn-drift", 0.1)
    (resolved,) = ka.list_alerts(state="resolved")
    with pytest.raises(Conflict, match="resolved"):
        ka.acknowledge_alert(resolved.alert_id)
    kinds = [e.kind for e in ka.get_alert_events(alert_id=alert.alert_id)]
    assert kinds == ["firing", "acknowledged", "resolved"]
    assert [e.kind for e in ka.get_alert_events(rule="churn-drift", limit=1)] == ["resolved"]
    audited = [(e.action, e.actor) for e in audit_log(backend, "alert")]
    assert ("alert.firing", "keel-scheduler") in audited
    assert ("alert.acknowledge", "ada") in audited


def test_deleting_a_rule_resolves_its_open_alert(backend: KeelEnv) -> None:
    ka.add_alert_rule("gone", notifiers=[], **RULE)
    _fire(backend, "gone", 0.9)
    (alert,) = ka.list_alerts(state="firing")
    ka.delete_alert_rule("gone")
    assert ka.get_alert(alert.alert_id).state.value == "resolved"
    assert ka.get_alert_events(alert_id=alert.alert_id)[-1].detail == {"why": "rule deleted"}


def test_a_rule_object_is_stored_as_parsed(keel_env: KeelEnv) -> None:
    from keel.stores import current_stores

    rule = parse_rule({"name": "direct", **RULE, "actions": ["rollback"]})
    (stored,) = current_stores().alerts.add_rules([rule])
    assert stored.actions == ({"type": "rollback"},)
    with pytest.raises(InvalidInput):
        current_stores().alerts.add_rules(["not a rule"])  # type: ignore[list-item]
    with pytest.raises(InvalidInput, match="twice"):
        current_stores().alerts.add_rules([rule, rule])


def test_disabling_a_rule_resolves_its_open_alert(backend: KeelEnv) -> None:
    ka.add_alert_rule("muted", notifiers=[], **RULE)
    _fire(backend, "muted", 0.9)
    (alert,) = ka.list_alerts(state="firing")
    ka.add_alert_rule("muted", notifiers=[], enabled=False, replace=True, **RULE)
    assert ka.get_alert(alert.alert_id).state.value == "resolved"
    assert ka.get_alert_events(alert_id=alert.alert_id)[-1].detail == {"why": "rule disabled"}
    _fire(backend, "muted", 0.9)  # a disabled rule is not evaluated
    assert ka.list_alerts(state="firing") == []


def test_at_most_one_alert_per_rule_is_open(backend: KeelEnv) -> None:
    import uuid

    import sqlalchemy as sa

    from keel.store.schema_alerts import alerts

    ka.add_alert_rule("once", notifiers=[], **RULE)
    _fire(backend, "once", 0.9)
    (alert,) = ka.list_alerts(state="firing")
    row = {**alert.to_dict(), "alert_id": uuid.uuid4().hex, "state": "pending"}
    db = _database_stores(backend).tracking.db
    with pytest.raises(sa.exc.IntegrityError), db.write() as conn:
        conn.execute(alerts.insert().values(**row))
    with db.write() as conn:  # a resolved one beside it is fine
        conn.execute(alerts.insert().values(**{**row, "state": "resolved"}))
    _fire(backend, "once", 0.9)
    assert len(ka.list_alerts(state="firing")) == 1
