"""Pausing a canary (the alerts' pause_canary action): held at its step, resumed later."""

from __future__ import annotations

from dataclasses import replace

import pytest
from tests.conftest import KeelEnv
from tests.deploy._control import register_versions

import keel
from keel.deploy import api as deploy_api
from keel.deploy import transitions as tr
from keel.deploy.entities import Deployment, Strategy
from keel.deploy.traffic import BackendStats
from keel.errors import Conflict
from keel.governance.audit import audit_log

T0 = 1_700_000_000_000


def _dep() -> Deployment:
    return Deployment("d", "prod", None, tr.create_plan("d", "m", 1), None, T0, T0, "ada")


def _apply(dep: Deployment, change: tr.Change) -> Deployment:
    assert change.plan.revision == dep.revision + 1
    return replace(dep, plan=change.plan, rollout=change.rollout)


def test_a_paused_canary_takes_no_step_until_resumed_and_then_restarts_its_step() -> None:
    config = {"steps": [20, 100], "interval_s": 10, "min_requests": 1}
    dep = _apply(_dep(), tr.start(_dep(), ("m", 2), Strategy.CANARY, config, T0))
    good = {k: BackendStats(k, 10, 0, 5.0) for k in ("m/1", "m/2")}
    paused = _apply(dep, tr.pause(dep, T0 + 1_000))
    assert paused.plan.backends == dep.plan.backends  # traffic unchanged
    assert paused.rollout.summary["paused"]["at"] == T0 + 1_000
    assert tr.step(paused, good, T0 + 1_000_000) is None  # long overdue, still held
    with pytest.raises(Conflict, match="paused already"):
        tr.pause(paused, T0 + 2_000)
    resumed = _apply(paused, tr.resume(paused, T0 + 50_000))
    assert "paused" not in resumed.rollout.summary
    assert resumed.rollout.step_started_at == T0 + 50_000
    assert tr.step(resumed, good, T0 + 59_999) is None  # the step's interval starts again
    assert tr.step(resumed, good, T0 + 60_000).action == "canary.step"
    with pytest.raises(Conflict, match="no paused canary"):
        tr.resume(resumed, T0 + 61_000)


def test_only_a_running_canary_can_be_paused() -> None:
    with pytest.raises(Conflict, match="no rollout running"):
        tr.pause(_dep(), T0)
    shadow = _apply(_dep(), tr.start(_dep(), ("m", 2), Strategy.SHADOW, None, T0))
    with pytest.raises(Conflict, match="only a canary"):
        tr.pause(shadow, T0)


def test_pause_and_resume_through_the_sdk_on_the_database_are_recorded_and_audited(
    keel_env: KeelEnv,
) -> None:
    register_versions("churn", 2)
    keel.create_deployment("churn-prod", "models:/churn/1")
    keel.rollout("churn-prod", "models:/churn/2", strategy="canary", steps=[10, 100])
    dep = deploy_api.pause_rollout("churn-prod")
    assert dep.rollout.running
    assert dep.rollout.summary["paused"]
    assert [b.weight for b in dep.plan.backends] == [90.0, 10.0]
    with pytest.raises(Conflict):
        deploy_api.pause_rollout("churn-prod")
    dep = deploy_api.resume_rollout("churn-prod")
    assert "paused" not in dep.rollout.summary
    actions = [h.action for h in keel.get_deployment_history("churn-prod")]
    assert actions[-2:] == ["pause", "resume"]
    audited = [e.action for e in audit_log(object="churn-prod")]
    assert "deployment.pause" in audited
    assert "deployment.resume" in audited
