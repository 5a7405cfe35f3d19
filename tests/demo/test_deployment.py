"""The demo's deployment act, read back from the shared demo's home: the promotion created
the deployment, a longer search's challenger passed the gates, and its promotion started
a canary that the server's controller judged step by step under live traffic.
"""

from __future__ import annotations

import pytest

import keel
from keel.demo.deployment import CANARY, DEPLOYMENT, TRAFFIC, WARM_UP_ANSWERS
from keel.demo.lifecycle import MODEL_NAME
from keel.deploy.traffic import TrafficPlan

pytestmark = pytest.mark.slow
V1, V2, V3 = (f"{MODEL_NAME}/{v}" for v in (1, 2, 3))


def _weights(plan: TrafficPlan) -> dict[str, tuple[float, str]]:
    return {b.key: (b.weight, b.role.value) for b in plan.backends}


def test_the_challenger_came_from_a_pipeline_run_and_its_promotion_started_the_canary(
    at_demo_home,
) -> None:
    out = at_demo_home.result.deployment
    assert out is not None
    assert (out.name, out.champion, out.challenger) == (DEPLOYMENT, V1, V2)
    challenge = keel.get_pipeline_run(out.challenge_run_id)
    assert challenge.status == "finished"
    assert keel.get_model_version(MODEL_NAME, 2).run_id == challenge.step("train").run_id
    promotion = out.promotion
    assert promotion is not None
    assert promotion["outcome"] == "promoted"
    assert promotion["rollout"]["action"] == "rollout"
    assert promotion["rollout"]["strategy"] == "canary"
    champion_gate = next(g for g in promotion["gates"] if g["kind"] == "champion")
    assert champion_gate["details"]["champion_version"] == 1
    assert champion_gate["details"]["improvement"] >= 0


def test_the_canary_passed_every_step_and_promoted_the_challenger(at_demo_home) -> None:
    out = at_demo_home.result.deployment
    assert out is not None
    assert out.outcome == "promoted", out.reason
    assert out.serving == V2
    assert [s.passed for s in out.steps] == [True] * len(CANARY["steps"])
    assert [s.weight for s in out.steps] == [float(w) for w in CANARY["steps"]]

    history = keel.get_deployment_history(DEPLOYMENT, 100)
    actions = [(h.actor, h.action) for h in history]
    n = len(CANARY["steps"])
    assert actions[: n + 2] == [
        ("root", "create"),  # the first promotion
        ("root", "rollout.canary"),  # the challenger's promotion, in the pipeline's worker
        *[("controller", "canary.step")] * (n - 1),
        ("controller", "promote"),
    ]
    assert history[n + 1].reason == f"canary passed all {n} steps: promoted {V2}"
    # the demo reported exactly the steps the history holds, with their verdicts
    assert [(s.revision, s.action, s.reason) for s in out.steps] == [
        (h.revision, h.action, h.reason) for h in history[2 : n + 2]
    ]
    assert list(out.history) == [h.to_dict() for h in history[: len(out.history)]]


def test_live_traffic_reached_both_versions_and_every_answer_was_right(demo) -> None:
    out = demo.result.deployment
    assert out is not None
    traffic = out.traffic

    assert traffic.failed == 0, traffic.failures
    assert traffic.answered[out.champion] >= WARM_UP_ANSWERS
    assert traffic.answered[out.challenger] > 0
    assert set(traffic.answered) == {out.champion, out.challenger}
    assert traffic.by_route["oip"] > 0
    assert traffic.by_route["invocations"] > 0
    answered = sum(traffic.answered.values())
    assert answered == sum(traffic.by_route.values()) <= traffic.sent <= TRAFFIC["max_requests"]
    for key, n in traffic.answered.items():
        assert 0.8 <= traffic.correct[key] / n <= 1  # the validation accuracies are ~0.97
    for step in out.steps:
        assert step.canary is not None
        assert step.canary["requests"] > 0
        if step.action == "canary.step":
            assert step.canary["requests"] >= CANARY["min_requests"]
            assert step.canary["errors"] == 0


def test_the_output_shows_each_step_its_gate_and_how_the_canary_ended(demo) -> None:
    out, output = demo.result.deployment, demo.output
    assert out is not None
    assert f"{DEPLOYMENT} (environment prod) revision 1" in output
    assert f"/v2/models/{DEPLOYMENT}/infer" in output
    assert "✓ champion roc_auc: roc_auc " in output
    for step in out.steps:
        verdict = "gate passed" if step.passed else "gate failed"
        assert f"step {step.step}/{len(CANARY['steps'])} at {step.weight:g}%: {verdict}" in output
        assert f"→ revision {step.revision} ({step.action}): {step.reason}" in output
    assert "Promoted:" in output
    assert f"Why: {out.reason}" in output
    assert f"{out.traffic.sent} requests sent" in output
    assert f"The canary ended {out.outcome}." in output


def test_a_second_demo_in_the_same_home_reuses_the_cache_and_still_closes_the_drift_loop(
    demo, tmp_path
) -> None:
    import io
    import shutil

    from rich.console import Console

    from keel.demo import run_demo
    from keel.demo.lifecycle import using_home

    home = tmp_path / "again"
    shutil.copytree(demo.result.home, home)  # the shared demo's home stays as it was
    console = Console(file=io.StringIO(), width=120)
    second = run_demo(home, console=console)
    output = console.file.getvalue()  # type: ignore[attr-defined]

    # Acts 1-3: every training step cached, so nothing new to register or to canary.
    assert second.version == 1
    with using_home(home):
        first = keel.get_pipeline_run(second.pipeline_run_id)
        assert {s.status for s in first.steps} == {"cached"}
        challenge = keel.get_pipeline_run(second.deployment.challenge_run_id)
        assert {s.status for s in challenge.steps} == {"cached"}
    assert second.deployment.outcome == "none"
    assert "the promotion is cached from an earlier run" in second.deployment.reason
    assert second.deployment.traffic.failed == 0, second.deployment.traffic.failures
    # Act 4 follows its own alert and dispatch, not the first demo's.
    out, before = second.monitoring, demo.result.monitoring
    assert out is not None
    assert out.alert_id != before.alert_id
    assert out.dispatch_id != before.dispatch_id
    assert out.retrain_version == 4
    assert out.failed_requests == 0, out.failures
    promotion = out.retrain_promotion
    assert promotion is not None
    # The champion now is the first demo's retrained version, already fitted to drifted
    # rows: the new one may or may not beat it on this evaluation data, and the gates say.
    if promotion["outcome"] == "promoted":
        assert out.canary_started
        assert "✓ step 1/3 at 20%: gate passed" in output.split("under the drifted traffic")[-1]
    else:
        assert promotion["outcome"] == "refused"
        assert promotion["reasons"]
        assert not out.canary_started
        assert "promotion  refused" in output
