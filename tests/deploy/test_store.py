"""The deployments store conformance suite: the same SDK calls on SQLite, PostgreSQL and REST."""

from __future__ import annotations

import random

import pytest
from tests.conftest import KeelEnv
from tests.deploy._control import register_versions

import keel
from keel.deploy.entities import Outcome, RolloutStatus
from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.governance.audit import audit_log
from keel.governance.identity import current_actor


@pytest.fixture
def env(backend: KeelEnv) -> KeelEnv:
    register_versions("churn", 4)
    keel.create_deployment("churn-prod", "models:/churn/1", environment="prod")
    return backend


def _split(dep) -> dict[str, tuple[float, str]]:
    return {b.key: (b.weight, b.role.value) for b in dep.plan.backends}


def test_create_get_list_and_delete(env: KeelEnv) -> None:
    dep = keel.get_deployment("churn-prod")
    assert (dep.name, dep.environment, dep.revision, dep.status) == (
        "churn-prod",
        "prod",
        1,
        "serving",
    )
    assert _split(dep) == {"churn/1": (100, "stable")}
    keel.create_deployment("churn-staging", "models:/churn/latest", environment="staging")
    assert _split(keel.get_deployment("churn-staging")) == {"churn/4": (100, "stable")}
    assert [d.name for d in keel.list_deployments()] == ["churn-prod", "churn-staging"]
    assert [d.name for d in keel.list_deployments("staging")] == ["churn-staging"]
    assert keel.list_deployments("qa") == []
    with pytest.raises(AlreadyExists):
        keel.create_deployment("churn-prod", "churn/2")
    keel.delete_deployment("churn-staging")
    with pytest.raises(NotFound):
        keel.get_deployment("churn-staging")
    with pytest.raises(NotFound):
        keel.delete_deployment("churn-staging")


def test_an_alias_resolves_to_its_version(env: KeelEnv) -> None:
    keel.set_alias("churn", "champion", 3)
    dep = keel.create_deployment("by-alias", "models:/churn@champion")
    assert _split(dep) == {"churn/3": (100, "stable")}


@pytest.mark.parametrize(
    ("name", "model", "error"),
    [
        ("", "churn/1", InvalidInput),
        ("x" * 129, "churn/1", InvalidInput),
        ("../../etc", "churn/1", InvalidInput),
        ("a b", "churn/1", InvalidInput),
        ("ok", "", InvalidInput),
        ("ok", "runs:/" + "a" * 32 + "/model", InvalidInput),
        ("ok", "models:/churn/0", InvalidInput),
        ("ok", "churn/99", NotFound),
        ("ok", "models:/nope@champion", NotFound),
        ("ok", "models:/churn/" + "9" * 40, InvalidInput),
        ("ok", "x" * 100_000, InvalidInput),
    ],
)
def test_bad_names_and_versions_are_refused(
    env: KeelEnv, name: str, model: str, error: type
) -> None:
    with pytest.raises(error):
        keel.create_deployment(name, model)
    with pytest.raises(InvalidInput):
        keel.create_deployment("ok2", "churn/1", environment="no spaces")


def test_every_traffic_change_is_in_the_history_and_the_audit_log(env: KeelEnv) -> None:
    keel.set_traffic("churn-prod", {"models:/churn/1": 80, "churn/2": 20})
    keel.rollback("churn-prod", to="churn/2")
    dep = keel.rollback("churn-prod")
    assert _split(dep)["churn/1"] == (100, "stable")
    history = keel.get_deployment_history("churn-prod")
    assert [h.action for h in history] == ["create", "traffic", "rollback", "rollback"]
    assert [h.revision for h in history] == [1, 2, 3, 4]
    assert {h.actor for h in history} == {current_actor()}  # through a server too
    assert history[1].reason == "traffic set by hand: churn/1 80%, churn/2 20%"
    assert "instant" in history[3].reason  # churn/1 was kept warm as standby
    assert {b.key: b.weight for b in history[1].plan.backends} == {"churn/1": 80, "churn/2": 20}
    assert [h.revision for h in keel.get_deployment_history("churn-prod", limit=2)] == [3, 4]
    if env.dialect != "rest":  # the audit log is read from the database
        actions = [e.action for e in audit_log(object="churn-prod")]
        assert actions == [
            "deployment.create", "deployment.traffic", "deployment.rollback", "deployment.rollback",
        ]  # fmt: skip


def test_a_canary_rollout_starts_at_its_first_step_and_can_be_aborted(env: KeelEnv) -> None:
    dep = keel.rollout(
        "churn-prod", "models:/churn/2", strategy="canary", steps=[10, 100], interval_s=5
    )
    assert dep.status == "canary step 1/2"
    assert _split(dep) == {"churn/1": (90, "stable"), "churn/2": (10, "candidate")}
    assert dep.rollout.config["steps"] == [10, 100]
    with pytest.raises(Conflict, match="already has a canary rollout"):
        keel.rollout("churn-prod", "churn/3")
    with pytest.raises(Conflict, match="abort or promote it"):
        keel.set_traffic("churn-prod", {"churn/3": 100})
    dep = keel.abort_rollout("churn-prod")
    assert _split(dep) == {"churn/1": (100, "stable")}
    assert dep.rollout.status is RolloutStatus.ABORTED
    with pytest.raises(Conflict):
        keel.abort_rollout("churn-prod")
    with pytest.raises(Conflict):
        keel.promote_rollout("churn-prod")


def test_promote_keeps_the_old_stable_warm(env: KeelEnv) -> None:
    keel.rollout("churn-prod", "churn/2", strategy="canary")
    dep = keel.promote_rollout("churn-prod")
    assert _split(dep) == {"churn/2": (100, "stable"), "churn/1": (0, "standby")}
    assert dep.rollout.status is RolloutStatus.PROMOTED
    with pytest.raises(Conflict, match="already the stable"):
        keel.rollout("churn-prod", "churn/2")


@pytest.mark.parametrize(
    ("strategy", "config"),
    [
        ("yolo", {}),
        ("canary", {"steps": [50, 10, 100]}),
        ("canary", {"steps": [10, 50]}),
        ("canary", {"steps": "5,25"}),
        ("canary", {"steps": [float("nan"), 100]}),
        ("canary", {"steps": [*range(1, 1000), 100]}),
        ("canary", {"interval_s": -1}),
        ("canary", {"min_requests": True}),
        ("canary", {"on_no_traffic": "maybe"}),
        ("canary", {"metrics": [{"metric": "auc"}]}),
        ("canary", {"colour": "blue"}),
        ("ab", {"weights": [60, 60]}),
        ("ab", {"weights": [100]}),
        ("ab", {"sticky_key": "a b"}),
        ("ab", {"outcome": "ordinal"}),
        ("ab", {"alpha": 0.9}),
        ("ab", {"variants": ["churn/2"]}),
        ("shadow", {"duration_s": 0}),
        ("blue-green", {"steps": [10]}),
    ],
)
def test_bad_strategy_options_are_refused(env: KeelEnv, strategy: str, config: dict) -> None:
    with pytest.raises(InvalidInput):
        keel.rollout("churn-prod", "churn/2", strategy=strategy, config=config)
    assert keel.get_deployment("churn-prod").revision == 1  # nothing was recorded


@pytest.mark.parametrize(
    "weights",
    [{}, {"churn/1": 60, "churn/2": 60}, {"churn/1": -5, "churn/2": 105}, {"churn/1": True},
     {"churn/1": 0}, {"churn/1": 50, "models:/churn/1": 50}, {"nope": 100}],
)  # fmt: skip
def test_bad_traffic_splits_are_refused(env: KeelEnv, weights: dict) -> None:
    with pytest.raises(InvalidInput):
        keel.set_traffic("churn-prod", weights)


def test_an_ab_test_declares_a_winner_from_recorded_outcomes(env: KeelEnv) -> None:
    dep = keel.rollout(
        "churn-prod", "churn/2", strategy="ab", sticky_key="user_id", min_samples=200
    )
    assert dep.plan.sticky_key == "user_id"
    assert _split(dep) == {"churn/1": (50, "stable"), "churn/2": (50, "candidate")}
    rng = random.Random(7)
    outcomes = [Outcome(float(rng.random() < 0.10), variant="churn/1") for _ in range(600)]
    outcomes += [Outcome(float(rng.random() < 0.30), variant="churn/2") for _ in range(600)]
    assert keel.record_outcomes("churn-prod", outcomes) == 1200
    # by request key: the variant is the one the sticky hash assigns
    assert keel.record_outcome("churn-prod", 1, request_key="user-42") == 1
    analysis = keel.ab_analysis("churn-prod")
    assert analysis.winner == "churn/2"
    assert analysis.verdict.startswith("winner: churn/2")
    counts = {v.variant: v.n for v in analysis.variants}
    assert sum(counts.values()) == 1201
    assert counts[dep.plan.choose_sticky("user-42").key] in (601,)
    dep = keel.promote_rollout("churn-prod", to=analysis.winner)
    assert _split(dep)["churn/2"] == (100, "stable")
    with pytest.raises(Conflict):
        keel.record_outcome("churn-prod", 1, variant="churn/2")


def test_outcomes_are_checked(env: KeelEnv) -> None:
    with pytest.raises(Conflict):
        keel.record_outcome("churn-prod", 1, variant="churn/1")  # no A/B test running
    with pytest.raises(Conflict):
        keel.ab_analysis("churn-prod")
    keel.rollout("churn-prod", "churn/2", strategy="ab")
    assert keel.ab_analysis("churn-prod").verdict.startswith("not enough data yet")
    for bad in (
        [Outcome(0.5, variant="churn/1")],  # binary test
        [Outcome(1, variant="churn/9")],
        [Outcome(1)],
        [Outcome(float("nan"), variant="churn/1")],
        [Outcome(1, variant="churn/1")] * 10_001,
        [],
    ):
        with pytest.raises(InvalidInput):
            keel.record_outcomes("churn-prod", bad)
    with pytest.raises(InvalidInput):
        keel.record_outcomes("churn-prod", [{"value": 1, "colour": "red"}])


def test_a_continuous_ab_test_uses_welch(env: KeelEnv) -> None:
    keel.rollout("churn-prod", "churn/2", strategy="ab", outcome="continuous", min_samples=30)
    rng = random.Random(3)
    rows = [{"value": rng.gauss(10, 2), "variant": "churn/1"} for _ in range(40)]
    rows += [{"value": rng.gauss(10, 2), "variant": "churn/2"} for _ in range(40)]
    keel.record_outcomes("churn-prod", rows)
    analysis = keel.ab_analysis("churn-prod")
    assert analysis.comparisons[0].test == "Welch t-test"
    assert analysis.winner is None
    assert analysis.verdict == "no difference yet at alpha 0.05"


def test_a_shadow_mirrors_without_taking_traffic(env: KeelEnv) -> None:
    dep = keel.rollout("churn-prod", "churn/3", strategy="shadow")
    assert dep.plan.shadow is not None
    assert dep.plan.shadow.key == "churn/3"
    assert _split(dep) == {"churn/1": (100, "stable")}
    assert dep.status == "shadowing"
    dep = keel.abort_rollout("churn-prod")
    assert dep.plan.shadow is None
    assert dep.rollout.status is RolloutStatus.ENDED
    assert dep.rollout.summary["shadow"]["agreement"] is None  # no data plane measured it


def test_blue_green_warms_then_switches_where_a_data_plane_serves(env: KeelEnv) -> None:
    dep = keel.rollout("churn-prod", "churn/2")
    if env.dialect == "rest":  # the server's data plane warmed churn/2, then switched
        assert dep.status == "serving"
        assert _split(dep) == {"churn/2": (100, "stable"), "churn/1": (0, "standby")}
        actions = [h.action for h in keel.get_deployment_history("churn-prod")]
        assert actions == ["create", "rollout.blue-green", "promote"]
    else:  # recorded; the controller of a server on this database warms and switches
        assert dep.status == "blue-green warming"
        assert _split(dep) == {"churn/1": (100, "stable"), "churn/2": (0, "standby")}


def test_rollback_without_a_previous_version_says_how_to_name_one(env: KeelEnv) -> None:
    with pytest.raises(Conflict, match="--to"):
        keel.rollback("churn-prod")
    with pytest.raises(Conflict, match="already serving"):
        keel.rollback("churn-prod", to="churn/1")
    with pytest.raises(NotFound):
        keel.rollback("nope")


def test_hostile_sdk_arguments_are_keel_errors(env: KeelEnv) -> None:
    calls = [
        lambda: keel.record_outcomes("churn-prod", None),
        lambda: keel.record_outcomes("churn-prod", "1,0"),
        lambda: keel.record_outcomes("churn-prod", [3]),
        lambda: keel.list_deployments(5),
        lambda: keel.list_deployments(""),
        lambda: keel.get_deployment_history("churn-prod", "5"),
        lambda: keel.get_deployment_history("churn-prod", 0),
        lambda: keel.get_deployment_history("churn-prod", 10**9),
        lambda: keel.rollout("churn-prod", "churn/2", config="steps=5"),
        lambda: keel.rollout("churn-prod", "churn/2", strategy=None),
        lambda: keel.rollout("churn-prod", 2),
        lambda: keel.set_traffic("churn-prod", "churn/1=100"),
        lambda: keel.set_traffic("churn-prod", {"churn/1": float("inf")}),
        lambda: keel.create_deployment("x", "churn/1", description=5),
        lambda: keel.create_deployment("x", "churn/1", description="d" * 20_000),
        lambda: keel.get_deployment(None),
        lambda: keel.promote_rollout("churn-prod", to=""),
        lambda: keel.rollback("churn-prod", to="models:/"),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
