"""``keel hpo studies`` and ``keel hpo show``: tables and --json, clear errors."""

from __future__ import annotations

import json
from typing import Any

import optuna
from typer.testing import CliRunner

from keel.cli.main import app
from keel.hpo import tune


def _cli(*args: str) -> Any:
    from tests.cli.cli_support import fresh_process

    fresh_process()
    return CliRunner().invoke(app, list(args))


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_int("x", 0, 5)
    trial.report(float(x), 0)
    if x == 5:
        raise ValueError("five is right out")
    return float(x)


def test_studies_and_show(home: Any) -> None:
    empty = _cli("hpo", "studies")
    assert empty.exit_code == 0
    assert "no studies yet" in empty.stdout
    sampler = optuna.samplers.GridSampler({"x": [3, 1, 5, 2]})
    result = tune(objective, n_trials=4, study="grid", sampler=sampler)
    listed = _cli("hpo", "studies")
    assert listed.exit_code == 0, listed.output
    assert "grid" in listed.stdout and "minimize" in listed.stdout  # noqa: PT018
    doc = json.loads(_cli("hpo", "studies", "--json").stdout)
    (study,) = doc["studies"]
    assert study["name"] == "grid"
    assert study["trials"] == 4
    assert study["states"] == {"COMPLETE": 3, "FAIL": 1}
    assert study["best_values"] == [1.0]
    assert study["best_params"] == {"x": 1}
    shown = _cli("hpo", "show", "grid")
    assert shown.exit_code == 0, shown.output
    assert "value 1  params x=1" in shown.stdout
    assert "FAIL" in shown.stdout and "PRUNED" not in shown.stdout  # noqa: PT018
    detail = json.loads(_cli("hpo", "show", "grid", "--json").stdout)
    assert [t["number"] for t in detail["trial_list"]] == [0, 1, 2, 3]
    assert {t["run_id"] for t in detail["trial_list"]} == set(result.trial_run_ids.values())
    last = json.loads(_cli("hpo", "show", "grid", "--limit", "1", "--json").stdout)
    assert [t["number"] for t in last["trial_list"]] == [3]


def test_unknown_or_bad_study_names_are_one_error_line(home: Any) -> None:
    missing = _cli("hpo", "show", "ghost")
    assert missing.exit_code == 2 or missing.exit_code == 1
    assert "no study named 'ghost'" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = _cli("hpo", "show", "../etc")
    assert bad.exit_code == 2
    assert "invalid study name" in bad.stderr
