"""The deployment controller against a recording data plane, on the SQLite metadata store."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.conftest import KeelEnv
from tests.deploy._control import RecordingApplier, register_versions

from keel.deploy.controller import CONTROLLER_ACTOR, RETRY_S, DeploymentController
from keel.deploy.entities import Deployment, RolloutStatus
from keel.deploy.traffic import BackendStats, Role
from keel.errors import Conflict, InvalidInput, NotFound
from keel.governance.audit import audit_log
from keel.stores import current_stores

pytestmark = pytest.mark.usefixtures("keel_env")

GOOD = dict(requests=200, errors=0, p99_ms=10.0)


@pytest.fixture
def plane(keel_env: KeelEnv) -> tuple[DeploymentController, RecordingApplier]:
    register_versions("churn", 4)
    applier = RecordingApplier()
    controller = DeploymentController(current_stores().deployments, applier)
    asyncio.run(controller.create("churn-prod", "models:/churn/1", environment="prod"))
    return controller, applier


def _split(dep: Deployment) -> dict[str, tuple[float, str]]:
    return {b.key: (b.weight, b.role.value) for b in dep.plan.backends}


def _start(dep: Deployment) -> float:
    assert dep.rollout is not None
    return dep.rollout.step_started_at / 1000


def test_create_applies_the_first_plan(plane) -> None:
    controller, applier = plane
    assert applier.serving["churn-prod"].revision == 1
    assert controller.applied_revision("churn-prod") == 1


def test_blue_green_warms_the_candidate_as_standby_then_switches_atomically(plane) -> None:
    controller, applier = plane
    dep = asyncio.run(controller.deploy("churn-prod", "models:/churn/2", strategy="blue-green"))
    warm, switched = applier.applied[-2:]
    assert {b.key: b.weight for b in warm.backends} == {"churn/1": 100, "churn/2": 0}
    assert {b.key: b.role for b in switched.backends} == {
        "churn/2": Role.STABLE,
        "churn/1": Role.STANDBY,
    }
    assert dep.rollout.status is RolloutStatus.PROMOTED
    history = current_stores().deployments.deployment_history("churn-prod")
    assert [h.action for h in history] == ["create", "rollout.blue-green", "promote"]
    assert history[-1].actor == CONTROLLER_ACTOR


def test_a_candidate_that_fails_to_warm_never_receives_traffic(plane) -> None:
    controller, applier = plane
    applier.broken.add("churn/2")
    with pytest.raises(InvalidInput, match="churn/2 failed its smoke prediction"):
        asyncio.run(controller.deploy("churn-prod", "models:/churn/2"))
    dep = current_stores().deployments.get_deployment("churn-prod")
    assert _split(dep) == {"churn/1": (100, "stable")}
    assert dep.rollout.status is RolloutStatus.FAILED
    assert "refused revision 2" in dep.rollout.reason
    assert {b.key for b in applier.serving["churn-prod"].backends} == {"churn/1"}
    assert applier.serving["churn-prod"].revision == dep.revision


def test_a_canary_steps_through_its_weights_and_promotes(plane) -> None:
    controller, applier = plane
    config = {"steps": [10, 50, 100], "interval_s": 60, "min_requests": 50}
    dep = asyncio.run(
        controller.deploy("churn-prod", "models:/churn/2", strategy="canary", config=config)
    )
    assert _split(dep) == {"churn/1": (90, "stable"), "churn/2": (10, "candidate")}
    applier.set_stats(
        "churn-prod", BackendStats("churn/1", **GOOD), BackendStats("churn/2", **GOOD)
    )
    t0 = _start(dep)
    asyncio.run(controller.tick(now=t0 + 30))  # interval not over: holds
    store = current_stores().deployments
    assert store.get_deployment("churn-prod").revision == dep.revision
    asyncio.run(controller.tick(now=t0 + 61))
    dep = store.get_deployment("churn-prod")
    assert _split(dep)["churn/2"] == (50, "candidate")
    assert applier.asked_since[-1] == pytest.approx(t0)
    t1 = _start(dep)
    asyncio.run(controller.tick(now=t1 + 61))
    dep = store.get_deployment("churn-prod")
    assert _split(dep) == {"churn/2": (100, "candidate"), "churn/1": (0, "standby")}
    asyncio.run(controller.tick(now=_start(dep) + 61))
    dep = store.get_deployment("churn-prod")
    assert _split(dep) == {"churn/2": (100, "stable"), "churn/1": (0, "standby")}
    assert dep.rollout.status is RolloutStatus.PROMOTED
    assert applier.serving["churn-prod"].revision == dep.revision


def test_a_failed_gate_rolls_back_and_says_why(plane) -> None:
    controller, applier = plane
    dep = asyncio.run(controller.deploy("churn-prod", "models:/churn/2", strategy="canary"))
    applier.set_stats(
        "churn-prod",
        BackendStats("churn/1", requests=1000, errors=0, p99_ms=10.0),
        BackendStats("churn/2", requests=50, errors=10, p99_ms=10.0),
    )
    asyncio.run(controller.tick(now=_start(dep) + 61))
    dep = current_stores().deployments.get_deployment("churn-prod")
    assert _split(dep) == {"churn/1": (100, "stable")}
    assert dep.rollout.status is RolloutStatus.ROLLED_BACK
    assert (
        "gate failed at step 1/4: canary error rate 0.20 > stable 0.00 + 0.05" in dep.rollout.reason
    )
    entries = audit_log(object="churn-prod", action="deployment.rollback")
    assert entries[-1].actor == CONTROLLER_ACTOR
    assert "gate failed" in entries[-1].change["reason"]


@pytest.mark.parametrize(("policy", "expected"), [("fail", "rolled-back"), ("pass", "running")])
def test_no_traffic_waits_then_follows_the_policy(plane, policy: str, expected: str) -> None:
    controller, _ = plane
    config = {"interval_s": 10, "max_wait": 2, "on_no_traffic": policy}
    dep = asyncio.run(
        controller.deploy("churn-prod", "models:/churn/2", strategy="canary", config=config)
    )
    t0 = _start(dep)
    asyncio.run(controller.tick(now=t0 + 25))  # 2.5 intervals: still waiting
    store = current_stores().deployments
    assert store.get_deployment("churn-prod").revision == dep.revision
    asyncio.run(controller.tick(now=t0 + 31))
    after = store.get_deployment("churn-prod")
    assert after.rollout.status.value == expected
    if policy == "pass":
        assert after.rollout.step == 1


def test_a_restarted_server_resumes_the_rollout_at_its_step(plane) -> None:
    controller, applier = plane
    config = {"steps": [10, 50, 100], "interval_s": 60, "min_requests": 5}
    dep = asyncio.run(
        controller.deploy("churn-prod", "models:/churn/2", strategy="canary", config=config)
    )
    applier.set_stats(
        "churn-prod", BackendStats("churn/1", **GOOD), BackendStats("churn/2", **GOOD)
    )
    asyncio.run(controller.tick(now=_start(dep) + 61))
    at_step_two = current_stores().deployments.get_deployment("churn-prod")
    assert at_step_two.rollout.step == 1

    fresh = RecordingApplier()  # a new process: nothing loaded
    restarted = DeploymentController(current_stores().deployments, fresh)
    asyncio.run(restarted.resume())
    assert fresh.serving["churn-prod"] == at_step_two.plan
    fresh.set_stats("churn-prod", BackendStats("churn/1", **GOOD), BackendStats("churn/2", **GOOD))
    asyncio.run(restarted.tick(now=_start(at_step_two) + 61))
    dep = current_stores().deployments.get_deployment("churn-prod")
    assert dep.rollout.step == 2  # continued from step 2, not restarted at step 1
    assert fresh.asked_since[-1] == pytest.approx(_start(at_step_two))


def test_a_shadow_reports_agreement_and_keeps_its_summary_when_it_ends(plane) -> None:
    controller, applier = plane
    config = {"duration_s": 300}
    dep = asyncio.run(controller.deploy("churn-prod", "churn/3", strategy="shadow", config=config))
    assert dep.plan.shadow.key == "churn/3"
    assert _split(dep) == {"churn/1": (100, "stable")}
    shadow = BackendStats("churn/3", requests=500, errors=1, p99_ms=12.0, extra={"agreement": 0.97})
    applier.set_stats("churn-prod", shadow)
    assert controller.live_stats("churn-prod")["churn/3"].extra["agreement"] == 0.97
    asyncio.run(controller.tick(now=_start(dep) + 301))
    dep = current_stores().deployments.get_deployment("churn-prod")
    assert dep.plan.shadow is None
    assert dep.rollout.status is RolloutStatus.ENDED
    assert dep.rollout.summary["shadow"]["agreement"] == 0.97
    assert dep.rollout.summary["shadow"]["requests"] == 500


def test_rollback_is_instant_to_the_warm_standby(plane) -> None:
    controller, applier = plane
    asyncio.run(controller.deploy("churn-prod", "models:/churn/2"))
    dep = asyncio.run(controller.rollback("churn-prod"))
    assert _split(dep) == {"churn/1": (100, "stable"), "churn/2": (0, "standby")}
    assert "instant" in dep.rollout.reason or "instant" in (
        current_stores().deployments.deployment_history("churn-prod")[-1].reason
    )
    dep = asyncio.run(controller.rollback("churn-prod", to="models:/churn/4"))
    assert (
        "loaded first" in current_stores().deployments.deployment_history("churn-prod")[-1].reason
    )
    assert applier.serving["churn-prod"].revision == dep.revision


def test_a_change_made_elsewhere_is_applied_on_the_next_tick(plane) -> None:
    controller, applier = plane
    store = current_stores().deployments
    dep = store.set_traffic("churn-prod", {"churn/1": 70, "churn/2": 30})  # e.g. the CLI
    assert applier.serving["churn-prod"].revision == dep.revision - 1
    asyncio.run(controller.tick())
    assert applier.serving["churn-prod"] == dep.plan


def test_delete_stops_serving_and_a_deleted_one_elsewhere_is_removed(plane) -> None:
    controller, applier = plane
    asyncio.run(controller.delete("churn-prod"))
    assert "churn-prod" not in applier.serving
    with pytest.raises(NotFound):
        asyncio.run(controller.delete("churn-prod"))
    asyncio.run(controller.create("other", "churn/1"))
    current_stores().deployments.delete_deployment("other")
    asyncio.run(controller.tick())
    assert "other" not in applier.serving


def test_operations_refuse_bad_input_with_keel_errors(plane) -> None:
    controller, _ = plane
    with pytest.raises(InvalidInput):
        asyncio.run(controller.deploy("churn-prod", "models:/churn/2", strategy="yolo"))
    with pytest.raises(InvalidInput):
        asyncio.run(controller.deploy("../etc", "models:/churn/2"))
    with pytest.raises(NotFound):
        asyncio.run(controller.deploy("churn-prod", "models:/churn/99"))
    with pytest.raises(Conflict):
        asyncio.run(controller.promote("churn-prod"))
    with pytest.raises(InvalidInput):
        asyncio.run(controller.create("x" * 500, "churn/1"))
    broken = RecordingApplier()
    broken.broken.add("churn/1")
    with pytest.raises(InvalidInput):
        asyncio.run(
            DeploymentController(current_stores().deployments, broken).create("new", "churn/1")
        )
    with pytest.raises(NotFound):
        current_stores().deployments.get_deployment("new")  # never left half-created


@pytest.mark.usefixtures("plane")
def test_a_plan_refused_at_resume_is_retried_after_a_back_off_not_every_tick() -> None:
    current_stores().deployments.set_traffic("churn-prod", {"churn/1": 50, "churn/2": 50})
    broken = RecordingApplier()
    broken.broken.add("churn/2")
    restarted = DeploymentController(current_stores().deployments, broken)
    asyncio.run(restarted.resume())
    assert broken.attempts == 1
    assert "churn-prod" not in broken.serving
    asyncio.run(restarted.tick())
    asyncio.run(restarted.tick())
    assert broken.attempts == 1  # within the back-off: not loaded again
    broken.broken.clear()  # the version loads now
    asyncio.run(restarted.tick(now=time.time() + RETRY_S + 1))  # the back-off has elapsed
    assert broken.attempts == 2
    assert broken.serving["churn-prod"].revision == 2
