"""The demo's deployment act on each of its paths: a gate that fails rolls the canary back,
and a second demo in the same home switches the existing deployment blue-green to its new
champion before a canary that passes.

The candidate grid shrinks to two logistic regressions (fast to train) and the canary to
one-second steps; the gate is made to fail (it demands more requests than the demo can
send) or to pass on anything but errors (no latency bound), so each path is the one taken.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

import keel
from keel.demo import deployment as demo_deployment
from keel.demo import lifecycle as demo_lifecycle
from keel.demo import run_demo
from keel.demo.candidates import CANDIDATES
from keel.demo.deployment import CANARY, DEPLOYMENT
from keel.demo.lifecycle import MODEL_NAME, using_home

LOGISTIC = tuple(c for c in CANDIDATES if c.family == "logistic_regression")[:2]
FAILS = {**CANARY, "interval_s": 1.0, "min_requests": 10**6, "max_wait": 1}
PASSES = {**CANARY, "interval_s": 1.0, "min_requests": 5, "max_wait": 30, "p99_slack_ms": 1e6}


def _console() -> Console:
    return Console(file=io.StringIO(), width=120)


@pytest.mark.slow
def test_a_failing_gate_rolls_back_then_a_second_demo_goes_blue_green_and_promotes(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_lifecycle, "CANDIDATES", LOGISTIC)
    home = tmp_path / "home"

    monkeypatch.setattr(demo_deployment, "CANARY", FAILS)
    console = _console()
    first = run_demo(home, console=console).deployment
    output = console.file.getvalue()  # type: ignore[attr-defined]

    assert first is not None
    v1, v2 = f"{MODEL_NAME}/1", f"{MODEL_NAME}/2"
    assert (first.champion, first.challenger) == (v1, v2)
    assert first.outcome == "rolled-back"
    assert first.serving == v1
    assert first.reason.startswith("gate failed at step 1/3: not enough data after ")
    (step,) = first.steps
    assert (step.step, step.weight, step.action, step.passed) == (1, 20.0, "rollback", False)
    assert first.traffic.failed == 0, first.traffic.failures
    assert first.traffic.answered[v2] > 0  # the canary had its 20% before the rollback
    assert "✗ step 1/3 at 20%: gate failed" in output
    assert "Rolled back automatically: " in output
    assert "The canary ended rolled-back." in output
    with using_home(home):
        dep = keel.get_deployment(DEPLOYMENT)
        assert [(b.key, b.weight) for b in dep.plan.backends] == [(v1, 100.0)]
        history = keel.get_deployment_history(DEPLOYMENT, 100)
    assert [h.action for h in history] == ["create", "rollout.canary", "rollback"]
    assert history[-1].actor == "controller"  # the gate's verdict, not a person's

    monkeypatch.setattr(demo_deployment, "CANARY", PASSES)
    console = _console()
    second = run_demo(home, console=console).deployment
    output = console.file.getvalue()  # type: ignore[attr-defined]

    assert second is not None
    v3, v4 = f"{MODEL_NAME}/3", f"{MODEL_NAME}/4"
    assert (second.champion, second.challenger) == (v3, v4)
    assert second.outcome == "promoted", second.reason
    assert second.serving == v4
    assert [s.passed for s in second.steps] == [True, True, True]
    assert second.traffic.failed == 0, second.traffic.failures
    assert set(second.traffic.answered) == {v3, v4}
    assert "Promoted: " in output
    with using_home(home):
        dep = keel.get_deployment(DEPLOYMENT)
        history = keel.get_deployment_history(DEPLOYMENT, 100)
    assert {b.key: b.weight for b in dep.plan.backends} == {v4: 100.0, v3: 0.0}
    assert [h.action for h in history][3:] == [
        "rollout.blue-green",  # the new champion warmed beside version 1...
        "promote",  # ...then switched to at once
        "rollout.canary",
        "canary.step",
        "canary.step",
        "promote",
    ]
    assert history[4].plan.live[0].key == v3
