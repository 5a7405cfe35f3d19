"""``keel.demo.run_demo``: what it stores, whom it crowns, and what it tells the user.

The full demo runs once per module (about ten seconds) and the tests read its home back
through the public SDK; cheaper tests shrink the candidate grid or test a piece alone.
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
from keel.demo.lifecycle import EXPERIMENT, MODEL_NAME, using_home
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
    assert keel.get_registered_model(MODEL_NAME).aliases == {"champion": 1}
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
    assert f"Done in {result.elapsed_seconds:.1f} s" in output


# -- cheaper checks ------------------------------------------------------------------------


def test_a_second_demo_in_the_same_home_moves_the_champion_to_version_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logistic = tuple(c for c in CANDIDATES if c.family == "logistic_regression")
    monkeypatch.setattr(demo_lifecycle, "CANDIDATES", logistic)
    home = tmp_path / "home"

    first = run_demo(home, console=_console())
    console = _console()
    second = run_demo(home, console=console)
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

    result = run_demo(console=_console())

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
