"""``keel.demo.run_demo``: what it stores, whom it crowns, how it deploys and canaries,
and what it tells the user.

The full demo (training, then a live server, traffic and a canary) runs once per module
(30-60 s on a busy two-core machine) and the tests read its home back through the public
SDK; cheaper tests shrink the candidate grid, skip the deployment or test a piece alone.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import keel
from keel import config
from keel.demo import DemoResult, run_demo
from keel.demo import lifecycle as demo_lifecycle
from keel.demo.candidates import CANDIDATES, evaluate, load_data
from keel.demo.deployment import CANARY, DEPLOYMENT, TRAFFIC, WARM_UP_ANSWERS
from keel.demo.lifecycle import EXPERIMENT, MODEL_NAME, RANKING, using_home
from keel.deploy.traffic import TrafficPlan
from keel.tracking.entities import RunStatus

CANDIDATE_NAMES = {c.name for c in CANDIDATES}
ENSEMBLES = {c.name: c.params["n_estimators"] for c in CANDIDATES if "n_estimators" in c.params}


@dataclass(frozen=True)
class Demo:
    result: DemoResult
    output: str


def _console() -> Console:
    return Console(file=io.StringIO(), width=120)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Run the whole demo once, in a home of its own, and keep what it printed."""
    console = _console()
    result = run_demo(tmp_path_factory.mktemp("demo") / "home", console=console)
    return Demo(result, console.file.getvalue())  # type: ignore[attr-defined]


@pytest.fixture
def at_demo_home(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    """Point Keel at the demo's home, as ``KEEL_HOME=<home> keel …`` would."""
    monkeypatch.setenv("KEEL_HOME", str(demo.result.home))
    monkeypatch.delenv("KEEL_TRACKING_URI", raising=False)
    monkeypatch.delenv("KEEL_ARTIFACT_URI", raising=False)
    config.reset_settings()
    yield demo
    config.reset_settings()


def _candidate_runs() -> list[keel.Run]:
    return list(keel.search_runs(experiment=EXPERIMENT, filter="tags.role = 'candidate'"))


# -- the whole demo ------------------------------------------------------------------------


@pytest.mark.slow
def test_every_candidate_is_a_finished_run_nested_in_the_sweep(at_demo_home: Demo) -> None:
    result = at_demo_home.result
    runs = list(keel.search_runs(experiment=EXPERIMENT))

    assert len(runs) == len(CANDIDATES) + 1  # the candidates and their parent 'sweep'
    assert all(run.status is RunStatus.FINISHED for run in runs)
    assert all(run.end_time is not None for run in runs)
    by_id = {run.run_id: run for run in runs}
    sweep = by_id[result.sweep_run_id]
    assert sweep.name == "sweep"
    assert sweep.parent_run_id is None
    assert sweep.tags["best_run_id"] == result.best_run_id
    children = [run for run in runs if run.parent_run_id == sweep.run_id]
    assert {run.run_id for run in children} == set(result.run_ids)
    assert {run.name for run in children} == CANDIDATE_NAMES
    assert result.home.is_dir()
    assert result.tracking_uri.startswith("sqlite:///")


@pytest.mark.slow
def test_each_run_records_params_metrics_datasets_model_and_confusion_matrix(
    at_demo_home: Demo,
) -> None:
    data = load_data()
    expected_params = {c.name: c.params for c in CANDIDATES}
    for run in _candidate_runs():
        params = expected_params[run.name]
        assert run.params == {k: str(v) for k, v in params.items()}
        assert run.tags["family"] in {"logistic_regression", "random_forest", "gradient_boosting"}
        for key in ("accuracy", "f1", "roc_auc", "log_loss"):
            assert 0 <= run.metrics[key] <= 1 or key == "log_loss", (run.name, key)

        inputs = {(i.name, i.context): i for i in keel.get_run_inputs(run.run_id)}
        assert set(inputs) == {
            ("breast_cancer_train", "training"),
            ("breast_cancer_validation", "validation"),
        }
        assert inputs["breast_cancer_train", "training"].profile["rows"] == len(data.X_train)
        assert inputs["breast_cancer_validation", "validation"].profile["rows"] == len(data.X_val)

        paths = {a.path for a in keel.list_artifacts(run.run_id)}
        assert "confusion_matrix.json" in paths
        assert "model/keel-model.json" in paths


@pytest.mark.slow
def test_ensembles_log_a_validation_loss_curve_ending_at_their_log_loss(
    at_demo_home: Demo,
) -> None:
    for run in _candidate_runs():
        history = keel.get_metric_history(run.run_id, "val_log_loss")
        if run.name not in ENSEMBLES:
            assert history == []
            continue
        assert [m.step for m in history] == list(range(1, ENSEMBLES[run.name] + 1))
        assert history[-1].value == pytest.approx(run.metrics["log_loss"], rel=1e-9)


@pytest.mark.slow
def test_the_champion_is_the_run_with_the_best_roc_auc(at_demo_home: Demo) -> None:
    result = at_demo_home.result
    runs = _candidate_runs()
    # Brute force: the highest roc_auc; among equals, the lowest log_loss.
    best = min(runs, key=lambda r: (-r.metrics["roc_auc"], r.metrics["log_loss"], r.name))

    champion = keel.resolve_model_version(f"models:/{MODEL_NAME}@champion")
    assert champion.run_id == best.run_id == result.best_run_id
    assert champion.version == result.version == 1
    # the challenger canaried after it is the runner-up, registered as version 2
    assert keel.get_registered_model(MODEL_NAME).aliases == {"champion": 1, "challenger": 2}
    ranked = keel.search_runs(experiment=EXPERIMENT, filter="tags.role = 'candidate'",
                              order_by=list(RANKING))  # fmt: skip
    assert keel.resolve_model_version(f"models:/{MODEL_NAME}@challenger").run_id == (
        ranked[1].run_id
    )
    assert result.champion_metrics == best.metrics
    assert champion.metrics == best.metrics
    assert all(best.metrics["roc_auc"] >= r.metrics["roc_auc"] for r in runs)


@pytest.mark.slow
def test_the_loaded_champion_predicts_exactly_as_sklearn_does(at_demo_home: Demo) -> None:
    data = load_data()
    best = keel.get_run(at_demo_home.result.best_run_id)
    candidate = next(c for c in CANDIDATES if c.name == best.name)
    fitted = candidate.build().fit(data.X_train, data.y_train)  # same seed, same model

    loaded = keel.load_model(f"models:/{MODEL_NAME}@champion")

    np.testing.assert_array_equal(loaded.predict(data.X_val), fitted.predict(data.X_val))
    np.testing.assert_array_equal(
        loaded.predict_proba(data.X_val), fitted.predict_proba(data.X_val)
    )
    assert best.metrics["roc_auc"] == evaluate(fitted, data.X_val, data.y_val).metrics["roc_auc"]


@pytest.mark.slow
def test_the_model_card_names_the_data_the_metrics_and_the_intended_use(
    at_demo_home: Demo,
) -> None:
    result = at_demo_home.result
    card = keel.get_model_card(MODEL_NAME, result.version)

    assert "breast_cancer_train | training" in card
    assert "breast_cancer_validation | validation" in card
    assert f"| roc_auc | {result.champion_metrics['roc_auc']:.6g} |" in card
    assert "Not for clinical use" in card
    assert result.best_run_id in card


@pytest.mark.slow
def test_the_output_ranks_the_candidates_and_says_where_to_look_next(demo: Demo) -> None:
    result, output = demo.result, demo.output
    assert str(result.home) in output
    for name in CANDIDATE_NAMES:
        assert name in output
    rows = [line.split() for line in output.splitlines() if "★" in line]
    assert ["1", result.best_run_name, "★"] in [row[:3] for row in rows]  # top of the table
    assert "digests verified" in output
    assert "# breast-cancer-classifier — version 1" in output  # the card's beginning

    commands = [line.strip() for line in output.splitlines()]
    assert f"export KEEL_HOME={result.home}" in commands
    assert "keel runs list --experiment breast-cancer" in commands
    compare = next(c for c in commands if c.startswith("keel runs compare "))
    assert compare.split()[3] == result.best_run_id
    assert compare.split()[4] in result.run_ids
    assert "keel models show breast-cancer-classifier" in commands
    assert "keel models card breast-cancer-classifier 1" in commands
    assert f"keel deploy show {DEPLOYMENT}" in commands
    assert f"keel deploy history {DEPLOYMENT}" in commands
    assert f"keel deploy render {DEPLOYMENT} --target k8s" in commands
    assert f"http://127.0.0.1:8750/deployments/{DEPLOYMENT}" in output
    assert f"Done in {result.elapsed_seconds:.1f} s" in output


# -- the deployment act --------------------------------------------------------------------


def _weights(plan: TrafficPlan) -> dict[str, tuple[float, str]]:
    return {b.key: (b.weight, b.role.value) for b in plan.backends}


@pytest.mark.slow
def test_the_champion_is_deployed_and_the_canary_ends_promoted_or_rolled_back(
    at_demo_home: Demo,
) -> None:
    out = at_demo_home.result.deployment
    assert out is not None
    champion, challenger = f"{MODEL_NAME}/1", f"{MODEL_NAME}/2"
    assert (out.name, out.champion, out.challenger) == (DEPLOYMENT, champion, challenger)

    dep = keel.get_deployment(DEPLOYMENT)
    assert dep.environment == "prod"
    assert dep.revision == out.revision
    rollout = dep.rollout
    assert rollout is not None
    assert (rollout.strategy.value, rollout.stable, rollout.candidate) == (
        "canary", champion, challenger
    )  # fmt: skip
    assert rollout.status.value == out.outcome
    assert rollout.reason == out.reason
    assert dep.stable.key == out.serving
    if out.outcome == "promoted":
        # the challenger serves everything; the champion stays loaded for a rollback
        assert _weights(dep.plan) == {challenger: (100, "stable"), champion: (0, "standby")}
    else:
        assert out.outcome == "rolled-back", out.reason
        assert _weights(dep.plan) == {champion: (100, "stable")}
        assert out.reason.startswith("gate failed at step ")


@pytest.mark.slow
def test_the_history_records_every_canary_step_and_the_verdict(at_demo_home: Demo) -> None:
    out = at_demo_home.result.deployment
    assert out is not None
    history = keel.get_deployment_history(DEPLOYMENT, 100)
    actions = [h.action for h in history]
    steps = [float(w) for w in CANARY["steps"]]

    assert actions[:2] == ["create", "rollout.canary"]
    assert history[0].plan.live[0].key == out.champion
    # every later change is the controller's, judged on live figures
    assert {h.actor for h in history[2:]} == {"controller"}
    canary_weights = [
        _weights(h.plan).get(out.challenger, (0.0, ""))[0]
        for h in history[1:]
        if h.action != "promote"
    ]
    if out.outcome == "promoted":
        assert actions[2:] == ["canary.step"] * (len(steps) - 1) + ["promote"]
        assert canary_weights == steps  # 20, 50, 100 % in turn
        passed_all = f"canary passed all {len(steps)} steps: promoted {out.challenger}"
        assert history[-1].reason == passed_all
    else:
        assert actions[-1] == "rollback"
        assert canary_weights[:-1] == steps[: len(canary_weights) - 1]
    # the demo reported exactly the steps the history holds, with their verdicts
    assert [(s.revision, s.action, s.reason) for s in out.steps] == [
        (h.revision, h.action, h.reason) for h in history[2:]
    ]
    assert [s.step for s in out.steps] == list(range(1, len(out.steps) + 1))
    assert all(s.passed for s in out.steps[:-1])
    assert out.steps[-1].passed is (out.outcome == "promoted")
    assert list(out.history) == [h.to_dict() for h in history]


@pytest.mark.slow
def test_live_traffic_reached_both_versions_and_every_answer_was_right(demo: Demo) -> None:
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
    # The server measured the canary's traffic itself: the gate's figures of each passed
    # intermediate step hold at least the requests the gate demands, and no error.
    for step in out.steps:
        assert step.canary is not None
        assert step.canary["requests"] > 0
        if step.action == "canary.step":
            assert step.canary["requests"] >= CANARY["min_requests"]
            assert step.canary["errors"] == 0
            assert step.stable is not None
            assert step.stable["requests"] >= CANARY["min_requests"]


@pytest.mark.slow
def test_the_output_shows_each_step_its_gate_and_how_the_canary_ended(demo: Demo) -> None:
    out, output = demo.result.deployment, demo.output
    assert out is not None
    assert f"{DEPLOYMENT} (environment prod) revision 1" in output
    assert f"/v2/models/{DEPLOYMENT}/infer" in output
    assert f"/deployments/{DEPLOYMENT}/invocations" in output
    for step in out.steps:
        verdict = "gate passed" if step.passed else "gate failed"
        assert f"step {step.step}/{len(CANARY['steps'])} at {step.weight:g}%: {verdict}" in output
        assert f"→ revision {step.revision} ({step.action}): {step.reason}" in output
    assert ("Promoted:" if out.outcome == "promoted" else "Rolled back") in output
    assert f"Why: {out.reason}" in output
    assert f"{out.traffic.sent} requests sent" in output
    assert f"The canary ended {out.outcome}." in output


# -- cheaper checks ------------------------------------------------------------------------


def test_a_second_demo_in_the_same_home_moves_the_champion_to_version_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logistic = tuple(c for c in CANDIDATES if c.family == "logistic_regression")
    monkeypatch.setattr(demo_lifecycle, "CANDIDATES", logistic)
    home = tmp_path / "home"

    first = run_demo(home, console=_console(), deploy=False)
    console = _console()
    second = run_demo(home, console=console, deploy=False)
    output = console.file.getvalue()  # type: ignore[attr-defined]

    # The second demo compares only its own runs, and crowns the same (deterministic) winner.
    assert set(second.run_ids).isdisjoint(first.run_ids)
    assert len(second.run_ids) == len(logistic)
    assert second.best_run_id in second.run_ids
    assert second.best_run_name == first.best_run_name
    assert second.champion_metrics == first.champion_metrics
    assert (first.version, second.version) == (1, 2)
    assert "champion → version 2 (was version 1)" in output
    assert "keel models card breast-cancer-classifier 2" in output
    with using_home(home):
        assert keel.get_registered_model(MODEL_NAME).aliases == {"champion": 2}
        assert len(keel.search_runs(experiment=EXPERIMENT)) == 2 * (len(logistic) + 1)


def test_without_a_home_the_demo_makes_a_fresh_one_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_lifecycle, "CANDIDATES", CANDIDATES[:1])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    result = run_demo(console=_console(), deploy=False)

    assert result.deployment is None
    assert result.home.parent == tmp_path
    assert result.home.name.startswith("keel-demo-")
    assert (result.home / "keel.db").is_file()


def test_using_home_points_keel_there_and_restores_the_callers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("KEEL_ARTIFACT_URI", str(tmp_path / "my-artifacts"))
    monkeypatch.delenv("KEEL_TRACKING_URI", raising=False)
    config.reset_settings()
    mine = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    keel.set_tracking_uri(mine)
    try:
        with using_home(tmp_path / "demo"):
            settings = keel.get_settings()
            assert settings.home == tmp_path / "demo"
            assert settings.resolved_tracking_uri() == f"sqlite:///{tmp_path / 'demo' / 'keel.db'}"
            assert settings.resolved_artifact_uri() == (tmp_path / "demo" / "artifacts").as_posix()
        assert os.environ["KEEL_HOME"] == str(tmp_path / "mine")
        assert os.environ["KEEL_ARTIFACT_URI"] == str(tmp_path / "my-artifacts")
        assert keel.get_settings().resolved_tracking_uri() == mine
    finally:
        config.reset_settings()


def test_demo_result_to_dict_is_json_ready(tmp_path: Path) -> None:
    result = DemoResult(
        home=tmp_path,
        tracking_uri="sqlite:///x",
        experiment=EXPERIMENT,
        sweep_run_id="s",
        run_ids=("a", "b"),
        best_run_id="a",
        best_run_name="logreg-C1",
        model_name=MODEL_NAME,
        version=1,
        alias="champion",
        champion_metrics={"roc_auc": 0.99},
        elapsed_seconds=1.5,
    )
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["champion_uri"] == f"models:/{MODEL_NAME}@champion"
    assert doc["run_ids"] == ["a", "b"]
    assert doc["deployment"] is None


@pytest.mark.slow
def test_the_whole_result_with_its_deployment_is_json_ready(demo: Demo) -> None:
    doc = json.loads(json.dumps(demo.result.to_dict()))
    deployment = doc["deployment"]
    assert deployment["name"] == DEPLOYMENT
    assert deployment["outcome"] == demo.result.deployment.outcome  # type: ignore[union-attr]
    assert [s["revision"] for s in deployment["steps"]] == [
        s.revision
        for s in demo.result.deployment.steps  # type: ignore[union-attr]
    ]
