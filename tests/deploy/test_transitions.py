"""The pure deployment state machine: each operation's plan, rollout and reason."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.deploy import changes
from keel.deploy import transitions as tr
from keel.deploy.entities import (
    Deployment,
    RolloutStatus,
    Strategy,
    check_deployment_name,
    check_environment,
    plan_from_dict,
    plan_to_dict,
)
from keel.deploy.traffic import BackendStats, Role
from keel.errors import Conflict, InvalidInput

T0 = 1_700_000_000_000


def _dep(**changes) -> Deployment:
    base = Deployment("d", "prod", None, tr.create_plan("d", "m", 1), None, T0, T0, "ada")
    return replace(base, **changes)


def _apply(dep: Deployment, change: tr.Change) -> Deployment:
    assert change.plan.revision == dep.revision + 1
    return replace(dep, plan=change.plan, rollout=change.rollout)


def _split(dep: Deployment) -> dict[str, tuple[float, Role]]:
    return {b.key: (b.weight, b.role) for b in dep.plan.backends}


def test_a_canary_walks_its_steps_then_promotes() -> None:
    config = {"steps": [20, 100], "interval_s": 10, "min_requests": 1}
    dep = _apply(_dep(), tr.start(_dep(), ("m", 2), Strategy.CANARY, config, T0))
    assert _split(dep) == {"m/1": (80, Role.STABLE), "m/2": (20, Role.CANDIDATE)}
    good = {k: BackendStats(k, 10, 0, 5.0) for k in ("m/1", "m/2")}
    assert tr.step(dep, good, T0 + 9_999) is None  # interval not over
    dep = _apply(dep, tr.step(dep, good, T0 + 10_000))
    assert _split(dep) == {"m/2": (100, Role.CANDIDATE), "m/1": (0, Role.STANDBY)}
    assert dep.rollout.step == 1
    assert dep.rollout.summary["baseline"]["requests"] == 10
    only_canary = {"m/2": BackendStats("m/2", 10, 0, 5.0)}
    change = tr.step(dep, only_canary, T0 + 20_000)
    assert change.action == "promote"
    assert change.reason == "canary passed all 2 steps: promoted m/2"
    dep = _apply(dep, change)
    assert _split(dep) == {"m/2": (100, Role.STABLE), "m/1": (0, Role.STANDBY)}
    assert dep.rollout.status is RolloutStatus.PROMOTED


def test_a_failed_gate_at_the_full_step_rolls_back_to_the_baseline_stable() -> None:
    config = {"steps": [50, 100], "interval_s": 0, "min_requests": 1}
    dep = _apply(_dep(), tr.start(_dep(), ("m", 2), Strategy.CANARY, config, T0))
    dep = _apply(dep, tr.step(dep, {k: BackendStats(k, 10, 0, 5.0) for k in ("m/1", "m/2")}, T0))
    change = tr.step(dep, {"m/2": BackendStats("m/2", 10, 5, 5.0)}, T0 + 1)
    assert change.action == "rollback"
    assert "canary error rate 0.50 > stable 0.00 + 0.05" in change.reason
    assert _split(_apply(dep, change)) == {"m/1": (100, Role.STABLE)}


def test_blue_green_and_shadow_and_ab_plans() -> None:
    bg = tr.start(_dep(), ("m", 2), Strategy.BLUE_GREEN, None, T0)
    assert {b.key: b.role for b in bg.plan.backends} == {"m/1": Role.STABLE, "m/2": Role.STANDBY}
    switched = tr.step(_apply(_dep(), bg), {}, T0)
    assert {b.key: b.role for b in switched.plan.backends} == {
        "m/2": Role.STABLE,
        "m/1": Role.STANDBY,
    }
    shadow = tr.start(_dep(), ("m", 3), Strategy.SHADOW, {"duration_s": 5}, T0)
    assert shadow.plan.shadow.key == "m/3"
    assert shadow.plan.shadow.role is Role.SHADOW
    ab = tr.start(
        _dep(),
        ("m", 2),
        Strategy.AB,
        {"weights": [70, 20, 10], "variants": ["m/3"]},
        T0,
        (("m", 3),),
    )
    assert [(b.key, b.weight, b.role) for b in ab.plan.backends] == [
        ("m/1", 70, Role.STABLE), ("m/2", 20, Role.CANDIDATE), ("m/3", 10, Role.VARIANT),
    ]  # fmt: skip
    assert ab.plan.sticky_key == "x-request-key"
    twice = {"weights": [40, 30, 30], "variants": ["m/2"]}
    with pytest.raises(InvalidInput, match="distinct"):
        tr.start(_dep(), ("m", 2), Strategy.AB, twice, T0, (("m", 2),))


def test_refusals() -> None:
    running = _apply(_dep(), tr.start(_dep(), ("m", 2), Strategy.CANARY, None, T0))
    with pytest.raises(Conflict):
        tr.start(running, ("m", 3), Strategy.CANARY, None, T0)
    with pytest.raises(Conflict):
        tr.set_traffic(running, {"m/1": 100})
    with pytest.raises(Conflict):
        tr.start(_dep(), ("m", 1), Strategy.CANARY, None, T0)
    with pytest.raises(Conflict):
        tr.abort(_dep(), T0)
    with pytest.raises(InvalidInput):
        tr.promote(running, T0, to="m/9")
    with pytest.raises(InvalidInput):
        tr.parse_strategy("rolling")
    with pytest.raises(InvalidInput):
        tr.set_traffic(_dep(), {"m/1": 50, "m/2": 40})


def test_a_refused_plan_is_recorded_as_the_one_still_serving() -> None:
    serving = _dep().plan
    moved = _apply(_dep(), tr.set_traffic(_dep(), {"m/1": 50, "m/2": 50}))
    change = tr.fail(moved, serving, "m/2 failed to load")
    assert change.plan.backends == serving.backends
    assert change.plan.revision == moved.revision + 1
    assert change.action == "failed"


def test_names_and_plan_json() -> None:
    assert check_deployment_name("churn-prod.v2_a") == "churn-prod.v2_a"
    for bad in ("", "-x", "a/b", "a" * 129, None, 3, "é"):
        with pytest.raises(InvalidInput):
            check_deployment_name(bad)
    with pytest.raises(InvalidInput):
        check_environment("a" * 65)
    plan = tr.start(_dep(), ("m", 3), Strategy.SHADOW, None, T0).plan
    assert plan_from_dict(plan_to_dict(plan)) == plan
    with pytest.raises(InvalidInput):
        plan_from_dict({"deployment": "d"})
    with pytest.raises(InvalidInput):
        plan_from_dict({**plan_to_dict(plan), "backends": []})


def test_transitions_exports_every_operation_from_one_place() -> None:
    assert tr.__all__ == sorted(tr.__all__)
    assert all(callable(getattr(tr, name)) for name in tr.__all__)
    # the operations that end, hold or override a rollout are changes', re-exported as is
    shared = set(tr.__all__) & set(changes.__all__)
    assert shared == {
        "Change", "abort", "fail", "pause", "promote", "resume", "rollback", "set_traffic",
        "shadow_summary",
    }  # fmt: skip
    assert all(getattr(tr, name) is getattr(changes, name) for name in shared)


def test_setting_traffic_keeps_the_versions_left_out_as_standby() -> None:
    split = _apply(_dep(), tr.set_traffic(_dep(), {"m/1": 60, "m/2": 40}))
    change = tr.set_traffic(split, {"m/3": 100})
    assert _split(_apply(split, change)) == {
        "m/3": (100, Role.STABLE), "m/1": (0, Role.STANDBY), "m/2": (0, Role.STANDBY),
    }  # fmt: skip
    assert change.reason == "traffic set by hand: m/3 100%"


_OPS = st.sampled_from(
    ["canary", "blue-green", "ab", "shadow", "step", "promote", "abort", "rollback", "traffic"]
)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(_OPS, st.integers(1, 4), st.integers(0, 30)), max_size=25))
def test_any_sequence_of_operations_keeps_a_valid_plan(ops) -> None:
    dep, now = _dep(), T0
    for op, version, errors in ops:
        now += 61_000
        stats = {f"m/{v}": BackendStats(f"m/{v}", 30, errors, 5.0) for v in range(1, 5)}
        try:
            if op in ("canary", "blue-green", "ab", "shadow"):
                change = tr.start(dep, ("m", version), Strategy(op), None, now)
            elif op == "step":
                change = tr.step(dep, stats, now)
            elif op == "promote":
                change = tr.promote(dep, now)
            elif op == "abort":
                change = tr.abort(dep, now, stats)
            elif op == "rollback":
                change = tr.rollback(dep, now, ("m", version))
            else:
                change = tr.set_traffic(dep, {"m/1": 100 - errors, f"m/{version + 1}": errors})
        except (Conflict, InvalidInput):
            continue
        if change is None:
            continue
        dep = _apply(dep, change)  # TrafficPlan checked its weights, roles, duplicates
        assert sum(b.weight for b in dep.plan.live) == pytest.approx(100)
        assert dep.stable.weight > 0
        running = dep.rollout is not None and dep.rollout.running
        assert running or dep.plan.shadow is None
