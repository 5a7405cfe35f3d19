"""A failed HPO trial says why: on the trial (``keel.fail_reason``), its run, the tune
result and ``keel hpo show`` — an infinite or NaN value included, which Optuna itself
fails (NaN) or keeps (inf) without storing any reason."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import optuna
import pytest
from tests.conftest import KeelEnv
from typer.testing import CliRunner

import keel
from keel.cli.main import app
from keel.hpo import create_study, load_study, tune
from keel.hpo.trials import FAIL_REASON


def _cli(*args: str) -> Any:
    from tests.cli.cli_support import fresh_process

    fresh_process()
    return CliRunner().invoke(app, list(args))


def _grid(*xs: int) -> optuna.samplers.GridSampler:
    return optuna.samplers.GridSampler({"x": list(xs)})  # each x once, in any order


def _numbers(study: str) -> dict[int, int]:
    """Return each trial's number by its x."""
    return {t.params["x"]: t.number for t in load_study(study).get_trials()}


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (float("nan"), "nan"),
        (np.float64("inf"), "inf"),  # not "np.float64(inf)"
    ],
)
def test_a_non_finite_value_fails_its_trial_with_the_reason(
    backend: KeelEnv, monkeypatch: pytest.MonkeyPatch, bad: float, shown: str
) -> None:
    monkeypatch.setenv("COLUMNS", "200")

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 1)
        return bad if x == 1 else 2.0

    result = tune(objective, n_trials=2, study="edge", sampler=_grid(0, 1))
    reason = f"the objective returned {shown}, not a finite number"
    good, failed = _numbers("edge")[0], _numbers("edge")[1]
    assert result.states == {"COMPLETE": 1, "FAIL": 1}
    assert result.failures == {failed: reason}
    trials = {t.number: t for t in load_study("edge").get_trials()}
    assert (trials[good].state.name, trials[failed].state.name) == ("COMPLETE", "FAIL")
    assert trials[failed].user_attrs[FAIL_REASON] == reason
    assert FAIL_REASON not in trials[good].user_attrs
    run = keel.get_run(result.trial_run_ids[failed])
    assert (run.status, run.tags["keel.hpo.error"]) == ("failed", reason)
    shown_cli = _cli("hpo", "show", "edge")
    assert shown_cli.exit_code == 0, shown_cli.output
    assert f"trial {failed} failed: {reason}" in shown_cli.stdout
    assert f"trial {good} failed" not in shown_cli.stdout
    doc = json.loads(_cli("hpo", "show", "edge", "--json").stdout)
    reasons = {t["number"]: t["fail_reason"] for t in doc["trial_list"]}
    assert reasons == {good: None, failed: reason}


def test_each_objective_of_a_multi_objective_study_is_checked(keel_env: KeelEnv) -> None:
    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_int("x", 0, 1)
        return (1.0, float("-inf")) if x == 1 else (1.0, 2.0)

    result = tune(
        objective, n_trials=2, study="pair", directions=["minimize", "maximize"],
        sampler=_grid(0, 1),
    )  # fmt: skip
    failed = _numbers("pair")[1]
    reason = "the objective returned -inf as value 1, not a finite number"
    assert result.failures == {failed: reason}


def test_every_failure_is_listed_with_its_own_reason(keel_env: KeelEnv) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_int("x", 0, 2)
        if x == 2:
            raise ValueError("the fold is empty")
        return float("inf") if x == 1 else 0.5

    tune(objective, n_trials=3, study="mixed", sampler=_grid(0, 1, 2))
    shown = _cli("hpo", "show", "mixed")
    assert shown.exit_code == 0, shown.output
    number = _numbers("mixed")
    lines = [line for line in shown.stdout.splitlines() if " failed: " in line]
    assert sorted(lines) == sorted([
        f"trial {number[1]} failed: the objective returned inf, not a finite number",
        f"trial {number[2]} failed: ValueError: the fold is empty",
    ])  # fmt: skip


def test_a_trial_optuna_failed_itself_says_it_has_no_reason(keel_env: KeelEnv) -> None:
    study = create_study("plain")
    study.optimize(lambda trial: float("nan") + trial.suggest_float("x", 0, 1), n_trials=1)
    [trial] = load_study("plain").get_trials()
    assert trial.state.name == "FAIL"
    doc = json.loads(_cli("hpo", "show", "plain", "--json").stdout)
    assert doc["trial_list"][0]["fail_reason"] == "no reason recorded (not run by keel.hpo.tune)"
