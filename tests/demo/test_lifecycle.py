"""``keel.demo.run_demo``: the training pipeline, its cached rerun, the trials, the lineage,
the model card and the promotion, read back from the demo's home through the public SDK.

The whole demo runs once per session (``conftest.demo``); the deployment and drift acts
are checked in ``test_deployment.py`` and ``test_drift.py``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import keel
from keel import config
from keel.demo import DemoResult, run_demo
from keel.demo.candidates import evaluate, load_data
from keel.demo.lifecycle import EXPERIMENT, MODEL_NAME, using_home
from keel.demo.search_space import build
from keel.demo.training import DEPLOYMENT, FIRST_TRIALS, LONGER_TRIALS, PIPELINE, STEPS
from keel.demo.training_runs import trials_of
from keel.tracking.entities import RunStatus


@pytest.mark.slow
def test_training_is_a_pipeline_run_whose_steps_all_finished_in_order(at_demo_home) -> None:
    result = at_demo_home.result
    info = keel.get_pipeline_run(result.pipeline_run_id)

    assert info.pipeline == PIPELINE
    assert info.ref == "keel.demo.training:training"
    assert info.status == "finished"
    assert [s.node for s in info.steps] == list(STEPS)
    assert {s.status for s in info.steps} == {"finished"}
    assert info.params["n_trials"] == str(FIRST_TRIALS)
    train = info.step("train")
    assert train.run_id == result.best_run_id
    assert keel.get_run(train.run_id).parent_run_id == info.run_id  # a step run of the pipeline


@pytest.mark.slow
def test_the_rerun_is_every_step_a_cache_hit_of_the_first_run(at_demo_home) -> None:
    result = at_demo_home.result
    first = keel.get_pipeline_run(result.pipeline_run_id)
    again = keel.get_pipeline_run(result.rerun_run_id)

    assert again.status == "finished"
    assert again.params == first.params
    assert [s.node for s in again.steps] == list(STEPS)
    assert {s.status for s in again.steps} == {"cached"}
    assert {s.node: s.cached_from for s in again.steps} == {s.node: s.run_id for s in first.steps}
    assert {s.node: s.cache_key for s in again.steps} == {s.node: s.cache_key for s in first.steps}
    assert 0 < result.rerun_seconds < 60  # a bound on the budget, not a timing claim
    out = at_demo_home.output
    assert f"pipeline run {again.run_id}: {len(STEPS)} cached in " in out


@pytest.mark.slow
def test_the_trials_are_finished_runs_nested_in_the_tune_step(at_demo_home) -> None:
    result = at_demo_home.result
    info = keel.get_pipeline_run(result.pipeline_run_id)
    tune = info.step("tune")
    trials = trials_of(info)

    assert [t.run_id for t in trials] == list(result.trial_run_ids)
    assert len(trials) == FIRST_TRIALS
    assert [int(t.tags["keel.hpo.trial"]) for t in trials] == list(range(FIRST_TRIALS))
    assert {t.parent_run_id for t in trials} == {tune.run_id}
    assert {t.status for t in trials} == {RunStatus.FINISHED}
    # the search compares the families; the train step fits the best trial's params
    assert len({t.tags["family"] for t in trials}) >= 2
    best = max(trials, key=lambda t: t.metrics["roc_auc"])
    assert result.champion_metrics["roc_auc"] == best.metrics["roc_auc"]
    best_params = keel.load_step_output(info.run_id, "tune")
    assert best_params["family"] == best.params["family"]
    # the longer search of the deployment act: its own tune step, more trials
    challenge = keel.get_pipeline_run(at_demo_home.result.deployment.challenge_run_id)
    assert len(trials_of(challenge)) == LONGER_TRIALS
    assert challenge.step("load").status == challenge.step("validate").status == "cached"


@pytest.mark.slow
def test_the_version_is_traced_to_the_train_step_and_its_datasets(at_demo_home) -> None:
    result = at_demo_home.result
    version = keel.get_model_version(MODEL_NAME, 1)
    assert version.run_id == result.best_run_id  # registered from the train step's run

    graph = keel.get_lineage(f"models:/{MODEL_NAME}/1", direction="up", depth=3)
    train = f"run:{result.best_run_id}"
    edges = {(e.source, e.target, e.relation) for e in graph.edges}
    assert (train, graph.root, "registered_as") in edges
    assert graph.nodes[train].label == "step train"
    datasets = {
        graph.nodes[e.source].label
        for e in graph.edges
        if e.target == train and e.relation == "input_to" and e.source.startswith("dataset:")
    }
    assert datasets == {"breast_cancer_train", "breast_cancer_validation"}
    assert (train, f"run:{result.pipeline_run_id}", "part_of") in edges
    inputs = {(i.name, i.context): i for i in keel.get_run_inputs(result.best_run_id)}
    assert inputs["breast_cancer_train", "training"].profile["rows"] == 455


@pytest.mark.slow
def test_the_champion_predicts_exactly_as_sklearn_does_with_the_best_params(
    at_demo_home,
) -> None:
    data = load_data()
    params = keel.load_step_output(at_demo_home.result.pipeline_run_id, "tune")
    fitted = build(params).fit(data.X_train, data.y_train)  # same seed, same model

    loaded = keel.load_model(f"models:/{MODEL_NAME}/1")

    np.testing.assert_array_equal(loaded.predict(data.X_val), fitted.predict(data.X_val))
    scores = evaluate(fitted, data.X_val, data.y_val).metrics
    assert at_demo_home.result.champion_metrics == pytest.approx(scores, rel=1e-12)
    assert keel.get_run(at_demo_home.result.best_run_id).metrics["roc_auc"] == scores["roc_auc"]


@pytest.mark.slow
def test_the_model_card_names_the_data_the_metrics_and_the_intended_use(at_demo_home) -> None:
    result = at_demo_home.result
    card = keel.get_model_card(MODEL_NAME, result.version)

    assert "breast_cancer_train | training" in card
    assert "breast_cancer_validation | validation" in card
    assert f"| roc_auc | {result.champion_metrics['roc_auc']:.6g} |" in card
    assert "Not for clinical use" in card
    assert result.best_run_id in card


@pytest.mark.slow
def test_every_version_was_promoted_through_its_gates(at_demo_home) -> None:
    history = keel.promotion_history("prod", model=MODEL_NAME)
    promoted = sorted((p.version, p.previous_version) for p in history if p.promoted)
    assert promoted == [(1, None), (2, 1), (3, 2)]  # first, challenger, retrained
    for p in history:
        assert {g.kind for g in p.gates} == {"metric", "champion", "deployment"}
        assert p.passed
    first = next(p for p in history if p.version == 1)
    assert first.rollout is not None
    assert first.rollout["action"] == "create"
    later = [p for p in history if p.version in (2, 3)]
    assert {p.rollout["strategy"] for p in later} == {"canary"}  # type: ignore[index]
    assert keel.get_registered_model(MODEL_NAME).aliases == {"champion": 3}


@pytest.mark.slow
def test_the_output_shows_the_acts_and_says_where_to_look_next(demo) -> None:
    result, output = demo.result, demo.output
    assert str(result.home) in output
    assert "Training as a pipeline: load → validate → tune → train → evaluate" in output
    for node in STEPS:
        assert f"\n{node} " in output
    assert f"{FIRST_TRIALS} trials, each a run nested in the tune step's run" in output
    assert "registered_as ← step train" in output
    assert "digests verified" in output
    assert "# breast-cancer-classifier — version 1" in output  # the card's beginning
    assert "every step a cache hit" in output

    commands = [line.strip() for line in output.splitlines()]
    assert f"export KEEL_HOME={result.home}" in commands
    assert "keel runs list --experiment breast-cancer" in commands
    compare = next(c for c in commands if c.startswith("keel runs compare "))
    assert compare.split()[3:] == list(result.trial_run_ids[:2])
    assert "keel models show breast-cancer-classifier" in commands
    assert "keel models card breast-cancer-classifier 1" in commands
    assert f"keel pipeline show {result.pipeline_run_id}" in commands
    assert f"keel deploy history {DEPLOYMENT}" in commands
    assert "keel alerts events" in commands
    assert f"http://127.0.0.1:8750/deployments/{DEPLOYMENT}" in output
    assert f"Done in {result.elapsed_seconds:.1f} s" in output


@pytest.mark.slow
def test_the_whole_result_is_json_ready(demo) -> None:
    doc = json.loads(json.dumps(demo.result.to_dict()))
    assert doc["champion_uri"] == f"models:/{MODEL_NAME}@champion"
    assert doc["trial_run_ids"] == list(demo.result.trial_run_ids)
    assert doc["deployment"]["name"] == DEPLOYMENT
    assert doc["monitoring"]["retrain_version"] == 3
    assert "models" not in doc["deployment"]


# -- cheaper checks ------------------------------------------------------------------------


@pytest.mark.slow
def test_without_a_home_a_fresh_one_is_made_kept_and_a_second_demo_there_is_all_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = run_demo(console=Console(file=io.StringIO()), deploy=False)

    assert first.deployment is None
    assert first.monitoring is None
    assert first.home.parent == tmp_path
    assert first.home.name.startswith("keel-demo-")
    assert (first.home / "keel.db").is_file()

    second = run_demo(first.home, console=Console(file=io.StringIO()), deploy=False)
    assert second.version == first.version == 1  # nothing new to register
    with using_home(first.home):
        runs = keel.list_pipeline_runs(PIPELINE)
        assert len(runs) == 4  # two runs and two reruns
        latest = keel.get_pipeline_run(second.pipeline_run_id)
        assert {s.status for s in latest.steps} == {"cached"}
        assert keel.get_deployment(DEPLOYMENT).stable.key == f"{MODEL_NAME}/1"  # promoted


def test_using_home_points_keel_there_and_restores_the_callers_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("KEEL_ARTIFACT_URI", str(tmp_path / "my-artifacts"))
    monkeypatch.delenv("KEEL_TRACKING_URI", raising=False)
    monkeypatch.delenv("KEEL_ALERT_INTERVAL", raising=False)
    config.reset_settings()
    mine = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    keel.set_tracking_uri(mine)
    try:
        with using_home(tmp_path / "demo", settings={"KEEL_ALERT_INTERVAL": "2"}):
            settings = keel.get_settings()
            assert settings.home == tmp_path / "demo"
            assert settings.resolved_tracking_uri() == f"sqlite:///{tmp_path / 'demo' / 'keel.db'}"
            assert settings.resolved_artifact_uri() == (tmp_path / "demo" / "artifacts").as_posix()
            assert settings.alert_interval == 2.0
        assert os.environ["KEEL_HOME"] == str(tmp_path / "mine")
        assert os.environ["KEEL_ARTIFACT_URI"] == str(tmp_path / "my-artifacts")
        assert "KEEL_ALERT_INTERVAL" not in os.environ
        assert keel.get_settings().resolved_tracking_uri() == mine
    finally:
        config.reset_settings()


def test_a_bare_demo_result_to_dict_is_json_ready(tmp_path: Path) -> None:
    result = DemoResult(
        home=tmp_path,
        tracking_uri="sqlite:///x",
        experiment=EXPERIMENT,
        pipeline_run_id="p",
        rerun_run_id="q",
        rerun_seconds=0.1,
        trial_run_ids=("a", "b"),
        best_run_id="t",
        best_run_name="logreg C=1",
        model_name=MODEL_NAME,
        version=1,
        alias="champion",
        champion_metrics={"roc_auc": 0.99},
        elapsed_seconds=1.5,
    )
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["champion_uri"] == f"models:/{MODEL_NAME}@champion"
    assert doc["trial_run_ids"] == ["a", "b"]
    assert doc["deployment"] is None
    assert doc["monitoring"] is None
