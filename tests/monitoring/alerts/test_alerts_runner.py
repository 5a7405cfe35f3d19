"""Evaluation passes on a real database: deliveries, dedup, cooldown, repeat and ack,
actions on real deployments, and one failing rule never stopping the others."""

from __future__ import annotations

import socket
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import KeelEnv
from tests.deploy._control import register_versions
from tests.monitoring.alerts.alerts_receivers import HttpReceiver, http_receiver

import keel
from keel.errors import InvalidInput
from keel.governance.audit import audit_log
from keel.monitoring import alerts as ka
from keel.monitoring.alerts.actions import (
    ActionContext,
    register_alert_action,
    unregister_alert_action,
)
from keel.monitoring.alerts.runner import run_pass
from keel.store.clock import now_ms
from keel.stores import current_stores

# webhooks here reach receivers on 127.0.0.1, which Keel refuses unless allow-listed
pytestmark = pytest.mark.usefixtures("outbound_loopback")

RULE = {"deployment": "churn-prod", "metric": "error_rate", "op": ">", "threshold": 0.1}
MINUTE = 60_000


class Figures:
    """A figure source a test drives: one value per deployment, or an error."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}
        self.calls: list[tuple[str, float]] = []

    def __call__(self, stores: Any, deployment: str, *, window_s: float, now_ms: int) -> dict:
        self.calls.append((deployment, window_s))
        value = self.values.get(deployment)
        if isinstance(value, Exception):
            raise value
        return {} if value is None else {"error_rate": value}


@pytest.fixture
def hook() -> Iterator[HttpReceiver]:
    with http_receiver() as receiver:
        yield receiver


def _pass(figures: Figures, now: int) -> Any:
    return run_pass(current_stores(), figure_source=figures, now=now)


def _events(rule: str) -> list[str]:
    return [e.kind for e in ka.get_alert_events(rule=rule)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_firing_alert_notifies_once_then_once_more_when_it_resolves(
    keel_env: KeelEnv, hook: HttpReceiver
) -> None:
    ka.add_alert_rule("errors", for_=2, notifiers=[{"type": "webhook", "url": hook.url}], **RULE)
    figures, t0 = Figures(), now_ms()
    figures.values["churn-prod"] = 0.5
    for i in range(5):
        _pass(figures, t0 + i * 15_000)
    assert [b["event"] for b in hook.bodies()] == ["firing"]
    figures.values["churn-prod"] = 0.01
    _pass(figures, t0 + 5 * 15_000)
    _pass(figures, t0 + 6 * 15_000)
    assert [b["event"] for b in hook.bodies()] == ["firing", "resolved"]
    assert _events("errors") == ["pending", "firing", "notified", "resolved", "notified"]
    assert figures.calls[0] == ("churn-prod", 3600.0)


def test_a_rule_without_data_neither_fires_nor_resolves(keel_env: KeelEnv) -> None:
    ka.add_alert_rule("quiet", notifiers=[], **RULE)
    figures, t0 = Figures(), now_ms()
    figures.values["churn-prod"] = 0.5
    _pass(figures, t0)
    figures.values["churn-prod"] = None  # e.g. no traffic in the window
    for i in range(1, 4):
        _pass(figures, t0 + i * 15_000)
    (alert,) = ka.list_alerts()
    assert alert.state.value == "firing"
    assert alert.value == 0.5


def test_a_new_firing_inside_the_cooldown_does_not_re_notify(
    keel_env: KeelEnv, hook: HttpReceiver
) -> None:
    ka.add_alert_rule("flappy", cooldown="10m", notifiers=[{"type": "webhook", "url": hook.url}],
                      **RULE)  # fmt: skip
    figures, t0 = Figures(), now_ms()
    for i, value in enumerate([0.5, 0.0, 0.5, 0.0, 0.5]):
        figures.values["churn-prod"] = value
        _pass(figures, t0 + i * MINUTE)
    assert [b["event"] for b in hook.bodies()] == ["firing", "resolved"]
    # still firing when the cooldown has passed: it notifies then, once
    _pass(figures, t0 + 1 * MINUTE + 10 * MINUTE)
    _pass(figures, t0 + 1 * MINUTE + 11 * MINUTE)
    assert [b["event"] for b in hook.bodies()] == ["firing", "resolved", "firing"]
    firings = [e for e in ka.get_alert_events(rule="flappy") if e.kind == "firing"]
    assert [("held" in e.detail) for e in firings] == [False, True, True]


def test_acknowledging_stops_the_repeats(keel_env: KeelEnv, hook: HttpReceiver) -> None:
    ka.add_alert_rule("loud", repeat="1m", notifiers=[{"type": "webhook", "url": hook.url}],
                      **RULE)  # fmt: skip
    figures, t0 = Figures(), now_ms()
    figures.values["churn-prod"] = 0.5
    _pass(figures, t0)
    _pass(figures, t0 + 30_000)
    _pass(figures, t0 + MINUTE)
    assert [b["event"] for b in hook.bodies()] == ["firing", "repeat"]
    (alert,) = ka.list_alerts(state="firing")
    ka.acknowledge_alert(alert.alert_id)
    _pass(figures, t0 + 3 * MINUTE)
    assert [b["event"] for b in hook.bodies()] == ["firing", "repeat"]
    assert ka.get_alert(alert.alert_id).notifications == 2


def test_one_broken_rule_never_stops_the_others(keel_env: KeelEnv, hook: HttpReceiver) -> None:
    ran: list[str] = []

    def remember(ctx: ActionContext) -> dict[str, Any]:
        ran.append(ctx.rule.name)
        return {"remembered": ctx.alert.alert_id}

    register_alert_action("remember", remember)
    try:
        ka.add_alert_rule("broken-source", notifiers=[], **{**RULE, "deployment": "bad"})
        down = {"type": "webhook", "url": f"http://127.0.0.1:{_closed_port()}/x", "timeout": 1}
        ka.add_alert_rule("notifier-down", notifiers=[down, {"type": "webhook", "url": hook.url}],
                          **RULE)  # fmt: skip
        ka.add_alert_rule("action-fails", notifiers=[], actions=["rollback", "remember"],
                          **{**RULE, "deployment": "no-such-deployment"})  # fmt: skip
        ka.add_alert_rule("fine", notifiers=[], actions=["remember"], **RULE)
        figures = Figures()
        figures.values.update(
            {"bad": RuntimeError("figures exploded"), "churn-prod": 0.5, "no-such-deployment": 0.5}
        )
        report = _pass(figures, now_ms())
    finally:
        unregister_alert_action("remember")
    assert report.evaluated == 4
    assert set(report.errors) == {"broken-source", "notifier-down", "action-fails"}
    assert "figures exploded" in report.errors["broken-source"][0]
    (event,) = ka.get_alert_events(rule="broken-source")
    assert event.kind == "error"
    assert event.alert_id is None
    assert "RuntimeError: figures exploded" in event.detail["error"]
    assert len(hook.requests) == 1  # the second notifier still went
    assert _events("notifier-down") == ["firing", "error", "notified"]
    assert _events("action-fails") == ["firing", "action_failed", "action"]
    assert sorted(ran) == ["action-fails", "fine"]
    (failed,) = ka.list_alerts(rule="action-fails")
    assert "NotFound" in (failed.last_error or "")
    assert {a.rule: a.state.value for a in ka.list_alerts()} == {
        "notifier-down": "firing", "action-fails": "firing", "fine": "firing"
    }  # fmt: skip
    # the same error next tick is not recorded again
    _pass(figures, now_ms() + 15_000)
    assert _events("broken-source") == ["error"]
    audited = {e.action for e in audit_log(action="alert")}
    assert {"alert.firing", "alert.error", "alert.action", "alert.action_failed"} <= audited


def test_the_rollback_action_rolls_the_deployment_back_audited_as_the_scheduler(
    keel_env: KeelEnv,
) -> None:
    register_versions("churn", 2)
    keel.create_deployment("churn-prod", "models:/churn/1")
    keel.rollout("churn-prod", "models:/churn/2")
    keel.promote_rollout("churn-prod")
    assert keel.get_deployment("churn-prod").stable.key == "churn/2"
    ka.add_alert_rule("roll", notifiers=[], actions=["rollback"], **RULE)
    figures = Figures()
    figures.values["churn-prod"] = 0.9
    _pass(figures, now_ms())
    dep = keel.get_deployment("churn-prod")
    assert dep.stable.key == "churn/1"
    last = keel.get_deployment_history("churn-prod")[-1]
    assert (last.action, last.actor) == ("rollback", "keel-scheduler")
    (action,) = [e for e in ka.get_alert_events(rule="roll") if e.kind == "action"]
    assert action.detail == {"action": "rollback", "ok": True, "deployment": "churn-prod",
                             "revision": dep.revision, "stable": "churn/1"}  # fmt: skip
    entries = [e for e in audit_log(action="alert.action")]
    assert entries[-1].actor == "keel-scheduler"


@pytest.mark.parametrize(
    ("action", "status"), [("abort_canary", "aborted"), ("pause_canary", "running")]
)
def test_canary_actions_abort_or_pause_the_running_canary(
    keel_env: KeelEnv, action: str, status: str
) -> None:
    register_versions("churn", 2)
    keel.create_deployment("churn-prod", "models:/churn/1")
    keel.rollout("churn-prod", "models:/churn/2", strategy="canary", steps=[10, 100])
    ka.add_alert_rule("canary-guard", notifiers=[], actions=[action], **RULE)
    figures = Figures()
    figures.values["churn-prod"] = 0.9
    _pass(figures, now_ms())
    rollout = keel.get_deployment("churn-prod").rollout
    assert rollout.status.value == status
    if action == "pause_canary":
        assert rollout.summary["paused"]
    # with no canary running any more, the next firing's action fails, recorded
    ka.add_alert_rule("again", notifiers=[], actions=["abort_canary"], **RULE)
    if action == "abort_canary":
        _pass(figures, now_ms())
        (event,) = [e for e in ka.get_alert_events(rule="again") if e.kind == "action_failed"]
        assert "no canary running to abort" in event.detail["error"]


def test_the_trigger_action_fires_the_pipelines_hook_with_the_alert(
    keel_env: KeelEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    fired: list[tuple[Any, ...]] = []
    hooks = types.ModuleType("keel.pipelines.triggers")
    hooks.fire_trigger = lambda stores, kind, subject, payload: (
        fired.append(  # type: ignore[attr-defined]
            (kind, subject, payload)
        )
        or ["dispatch-1"]
    )
    monkeypatch.setitem(sys.modules, "keel.pipelines.triggers", hooks)
    trigger = {"type": "trigger", "payload": {"why": "drift"}}
    ka.add_alert_rule("retrain", notifiers=[], actions=[trigger], **RULE)
    figures = Figures()
    figures.values["churn-prod"] = 0.9
    _pass(figures, now_ms())
    ((kind, subject, payload),) = fired
    (alert,) = ka.list_alerts()
    assert (kind, subject) == ("alert", "retrain")
    assert payload["why"] == "drift"
    assert payload["alert_id"] == alert.alert_id
    assert payload["event_key"] == f"alert:{alert.alert_id}"
    (event,) = [e for e in ka.get_alert_events(rule="retrain") if e.kind == "action"]
    assert event.detail["started"] == ["dispatch-1"]


def test_the_trigger_action_without_the_pipelines_hook_is_a_recorded_error(
    keel_env: KeelEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "keel.pipelines.triggers", None)  # import fails
    ka.add_alert_rule("retrain", notifiers=[], actions=["trigger"], **RULE)
    figures = Figures()
    figures.values["churn-prod"] = 0.9
    _pass(figures, now_ms())
    (event,) = [e for e in ka.get_alert_events(rule="retrain") if e.kind == "action_failed"]
    assert "needs keel.pipelines.triggers" in event.detail["error"]


def test_registering_actions_checks_names_and_handlers() -> None:
    with pytest.raises(InvalidInput, match="built-in"):
        register_alert_action("rollback", lambda ctx: None)
    with pytest.raises(InvalidInput, match="lowercase"):
        register_alert_action("Bad Name", lambda ctx: None)
    with pytest.raises(InvalidInput, match="callable"):
        register_alert_action("fine", "not callable")  # type: ignore[arg-type]


def test_the_trigger_action_calls_the_real_pipelines_hook(keel_env: KeelEnv) -> None:
    # no pipeline trigger listens on this rule: the hook starts nothing, and says so
    ka.add_alert_rule("retrain", notifiers=[], actions=["trigger"], **RULE)
    figures = Figures()
    figures.values["churn-prod"] = 0.9
    report = _pass(figures, now_ms())
    assert report.errors == {}
    (event,) = [e for e in ka.get_alert_events(rule="retrain") if e.kind == "action"]
    assert event.detail == {"action": "trigger", "ok": True, "started": []}
