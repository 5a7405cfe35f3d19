"""A tuning step in a pipeline: validate → tune → train, the best params flowing to train
as a step output, cached like any step; trials in processes started from a step's worker."""

from __future__ import annotations

from collections import Counter
from typing import Any

import optuna
import pytest

import keel
import keel.pipelines as kp
from keel.errors import InvalidInput
from keel.hpo import load_study, tuning_step


@kp.step
def validate(n: int) -> list:
    if n <= 0:
        raise ValueError(f"need rows, got {n}")
    return [float(i) for i in range(n)]


def depth_error(trial: optuna.Trial, data: list) -> float:
    """The best depth is a quarter of the rows (the "validation error" is the distance)."""
    depth = trial.suggest_int("depth", 1, 8)
    return abs(depth - len(data) / 4)


tune = tuning_step(
    depth_error,
    n_trials=8,
    sampler=optuna.samplers.GridSampler({"depth": list(range(1, 9))}),
)
tune_in_parallel = tuning_step(
    depth_error, n_trials=6, n_jobs=2, study="pipeline-par", name="tune-par"
)


@kp.step
def train(data: list, params: dict) -> dict:
    return {"rows": len(data), "depth": params["depth"]}


@kp.pipeline
def tuned(n: int = 16) -> None:
    data = validate(n)
    train(data, tune(data))


@kp.pipeline
def tuned_in_parallel(n: int = 8) -> None:
    data = validate(n)
    train(data, tune_in_parallel(data))


def _statuses(run: kp.PipelineRunInfo) -> dict[str, str]:
    return {s.node: s.status for s in run.steps}


def test_validate_tune_train_passes_the_best_params_on_and_caches(home: Any) -> None:
    first = tuned.run({"n": 16}, max_workers=1)
    assert _statuses(first) == {"validate": "finished", "tune": "finished", "train": "finished"}
    assert kp.load_step_output(first.run_id, "tune") == {"depth": 4}
    assert kp.load_step_output(first.run_id, "train") == {"rows": 16, "depth": 4}
    step = first.step("tune")
    assert step.params["n_trials"] == "8"
    assert f"{__name__}.depth_error@" in step.params["objective"]
    again = tuned.run({"n": 16}, max_workers=1)
    assert set(_statuses(again).values()) == {"cached"}
    other = tuned.run({"n": 24}, max_workers=1)  # new data: a new search
    assert _statuses(other)["tune"] == "finished"
    assert kp.load_step_output(other.run_id, "train") == {"rows": 24, "depth": 6}
    trials = keel.search_runs(filter="tags.keel.kind = 'hpo.trial'")
    by_study = Counter(r.tags["keel.hpo.study"] for r in trials)
    assert sorted(by_study.values()) == [8, 8]  # two searches of 8 trials, each a new study
    # each trial nests under its search's run: the step's run when the worker makes it the
    # active run, else the run tune() opens for the search
    parents = {r.parent_run_id for r in trials}
    assert len(parents) == 2
    for parent_id in parents:
        parent = keel.get_run(parent_id)
        assert parent.tags.get("keel.kind") in ("step", "hpo")
        assert parent.tags["keel.hpo.study"] in by_study


@pytest.mark.slow
def test_a_tuning_step_runs_its_trials_in_processes_of_its_own(home: Any) -> None:
    run = tuned_in_parallel.run({"n": 8}, max_workers=1)
    assert set(_statuses(run).values()) == {"finished"}
    study = load_study("pipeline-par")
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert kp.load_step_output(run.run_id, "train")["depth"] == study.best_params["depth"]


def test_bad_tuning_steps_are_refused_when_made(home: Any) -> None:
    with pytest.raises(InvalidInput, match="plain function"):
        tuning_step(print, n_trials=2)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="n_trials must be an integer from 1"):
        tuning_step(depth_error, n_trials=0)
    with pytest.raises(InvalidInput, match="invalid study name"):
        tuning_step(depth_error, n_trials=1, study="no/slashes")

    def clashing(trial: optuna.Trial, n_trials: int) -> float:
        return 0.0

    with pytest.raises(InvalidInput, match="'n_trials' clashes"):
        tuning_step(clashing, n_trials=1)
    with pytest.raises(InvalidInput, match="trial as its first argument"):
        tuning_step(lambda: 0.0, n_trials=1)


def test_a_tuning_step_runs_outside_a_pipeline_too(home: Any) -> None:
    assert tune([0.0] * 8) == {"depth": 2}
    assert tune(data=[0.0] * 12, n_trials=8) == {"depth": 3}
    with pytest.raises(InvalidInput, match="tuning step 'tune'"):
        tune([1.0], bogus=1)
