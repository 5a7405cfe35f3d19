"""The alert state machine: pending, firing, resolved; no data; dedup, cooldown, repeat, ack."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from keel.monitoring.alerts.engine import Step, decide, evaluate
from keel.monitoring.alerts.entities import Alert, AlertState
from keel.monitoring.alerts.rules import AlertRule, parse_rule

T0 = 1_800_000_000_000
RULE = parse_rule({"name": "r", "deployment": "d", "metric": "error_rate", "op": ">",
                   "threshold": 0.1, "for": 3, "cooldown": "10m", "repeat": "1h"})  # fmt: skip


def _after(rule: AlertRule, alert: Alert | None, step: Step, now: int) -> Alert | None:
    """What the store would hold after ``step`` (the runner persists the same fields)."""
    if step.state is None:
        return alert
    if step.state is AlertState.RESOLVED:
        return None
    base = alert or Alert("a" * 32, rule.name, rule.deployment, rule.metric, rule.severity,
                          AlertState.PENDING, None, 0, now)  # fmt: skip
    fired = now if step.transition in ("fire", "open-firing") else base.fired_at
    notified = now if step.notify in ("firing", "repeat") else base.notified_at
    return replace(base, state=step.state, value=step.value, breaches=step.breaches,
                   fired_at=fired, notified_at=notified)  # fmt: skip


def _run(rule: AlertRule, values: list[float | None], *, last_resolved: int | None = None):
    alert, steps = None, []
    for i, value in enumerate(values):
        now = T0 + i * 15_000
        step = decide(rule, alert, value, now, last_resolved_at=last_resolved)
        steps.append(step)
        alert = _after(rule, alert, step, now)
    return steps, alert


def test_breaching_for_consecutive_evaluations_fires_once_and_resolves() -> None:
    steps, _ = _run(RULE, [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05])
    assert [s.transition for s in steps] == [
        "none", "open-pending", "pending", "fire", "firing", "firing", "resolve"
    ]  # fmt: skip
    assert [s.breaches for s in steps] == [0, 1, 2, 3, 4, 5, 0]
    assert [s.notify for s in steps] == [None, None, None, "firing", None, None, "resolved"]
    assert [s.act for s in steps] == [False, False, False, True, False, False, False]


def test_a_pending_alert_that_stops_breaching_resolves_without_notifying() -> None:
    steps, _ = _run(RULE, [0.2, 0.2, 0.0])
    assert [s.transition for s in steps] == ["open-pending", "pending", "resolve"]
    assert all(s.notify is None for s in steps)


def test_for_one_fires_at_the_first_breach() -> None:
    steps, _ = _run(replace(RULE, for_=1), [0.5])
    assert (steps[0].transition, steps[0].notify, steps[0].act) == ("open-firing", "firing", True)


def test_a_missing_figure_keeps_the_state_and_the_count() -> None:
    steps, alert = _run(RULE, [0.2, None, float("nan"), 0.2, 0.2, None, None])
    assert [s.transition for s in steps] == [
        "open-pending", "none", "none", "pending", "fire", "none", "none"
    ]  # fmt: skip
    assert alert is not None
    assert alert.state is AlertState.FIRING
    steps, alert = _run(RULE, [None, None])
    assert alert is None
    assert [s.transition for s in steps] == ["none", "none"]


def test_each_operator() -> None:
    for op, hits in {">": [0.2], ">=": [0.1, 0.2], "<": [0.0], "<=": [0.0, 0.1],
                     "==": [0.1], "!=": [0.0, 0.2]}.items():  # fmt: skip
        rule = replace(RULE, op=op, for_=1)
        fired = [v for v in (0.0, 0.1, 0.2) if decide(rule, None, v, T0).transition != "none"]
        assert fired == hits, op


def test_a_firing_inside_the_cooldown_waits_and_notifies_once_it_has_passed() -> None:
    rule = replace(RULE, for_=1)
    resolved = T0 - 60_000  # the previous alert resolved a minute ago; cooldown is 10 min
    step = decide(rule, None, 0.5, T0, last_resolved_at=resolved)
    assert (step.transition, step.notify, step.act) == ("open-firing", None, False)
    assert step.held is not None
    assert "cooldown" in step.held
    alert = _after(rule, None, step, T0)
    later = decide(rule, alert, 0.5, T0 + 5 * 60_000, last_resolved_at=resolved)
    assert later.notify is None
    due = decide(rule, alert, 0.5, resolved + 600_000, last_resolved_at=resolved)
    assert (due.notify, due.act) == ("firing", True)
    # a flapping figure that resolves inside the cooldown never notified at all
    gone = decide(rule, alert, 0.0, T0 + 60_000, last_resolved_at=resolved)
    assert (gone.transition, gone.notify) == ("resolve", None)


def test_a_firing_alert_re_notifies_every_repeat_until_acknowledged() -> None:
    rule = replace(RULE, for_=1)
    alert = _after(rule, None, decide(rule, None, 0.5, T0), T0)
    assert alert is not None
    assert decide(rule, alert, 0.5, T0 + 3_599_000).notify is None
    assert decide(rule, alert, 0.5, T0 + 3_600_000).notify == "repeat"
    assert decide(rule, alert, 0.5, T0 + 3_600_000).act is False
    acked = replace(alert, acknowledged_by="ada")
    assert decide(rule, acked, 0.5, T0 + 7_200_000).notify is None
    assert decide(replace(rule, repeat_s=0), alert, 0.5, T0 + 99_000_000).notify is None


def test_evaluate_takes_each_enabled_rule_with_its_own_figures() -> None:
    other = replace(RULE, name="off", enabled=False)
    quick = replace(RULE, name="quick", for_=1, metric="latency_p99_ms", threshold=100)
    steps = evaluate(
        [RULE, other, quick],
        {},
        {"r": {"error_rate": 0.5}, "quick": {"latency_p99_ms": 250.0}, "off": {"error_rate": 1}},
        T0,
    )
    assert [(s.rule, s.transition) for s in steps] == [
        ("r", "open-pending"),
        ("quick", "open-firing"),
    ]


@given(
    values=st.lists(st.one_of(st.none(), st.just(float("nan")), st.floats(0, 1)), max_size=60),
    for_=st.integers(1, 4),
)
@settings(max_examples=200, deadline=None)
def test_laws_of_the_state_machine(values: list[float | None], for_: int) -> None:
    """Whatever the figures: a firing is delivered at most once per episode and only after
    ``for`` consecutive breaches; "resolved" is sent only for a delivered alert; no data
    changes nothing."""
    rule = replace(RULE, for_=for_, repeat_s=0.0, cooldown_s=0.0)
    alert: Alert | None = None
    delivered, run = False, 0
    for i, value in enumerate(values):
        now = T0 + i * 15_000
        step = decide(rule, alert, value, now)
        if value is None or value != value:  # missing: the state is kept
            assert step.transition == "none" or step.notify == "firing"
        elif value > rule.threshold:
            run += 1
        else:
            run = 0
        if step.notify == "firing":
            assert not delivered
            assert run >= for_
            delivered = True
        if step.notify == "resolved":
            assert delivered
        if step.transition == "resolve":
            delivered = False
        assert step.notify != "repeat"
        alert = _after(rule, alert, step, now)
