"""Trials as Ray tasks on a local Ray instance (one for the whole session), sharing one
study in SQLite, PostgreSQL or behind a live server: every trial number once."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from tests.conftest import RAY_GROUP

import keel
from keel.hpo import load_study, tune

ray = pytest.importorskip("ray", reason="the ray tests need the ray extra")
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group(RAY_GROUP)]


@pytest.fixture(autouse=True)
def local_ray(ray_cluster: Any) -> None:
    """Run on the suite's one local Ray instance (see ``ray_cluster``)."""


def curve(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -3.0, 3.0)
    for step in range(3):
        trial.report(abs(x) + step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    if x > 2.5:
        raise ValueError("too far right")
    return x * x


def test_trials_on_ray_share_one_study(backend: Any) -> None:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2)
    result = tune(curve, n_trials=9, n_jobs=3, study="on-ray", executor="ray", pruner=pruner)
    study = load_study("on-ray")
    assert sorted(t.number for t in study.trials) == list(range(9))
    assert sorted(result.trial_run_ids) == list(range(9))
    assert sum(result.states.values()) == 9
    for number, run_id in result.trial_run_ids.items():
        run = keel.get_run(run_id)
        assert run.parent_run_id == result.parent_run_id
        assert run.tags["keel.hpo.trial"] == str(number)
        assert run.tags["keel.hpo.state"] == study.trials[number].state.name
    assert study.trials[result.best_trial].value == result.best_value
