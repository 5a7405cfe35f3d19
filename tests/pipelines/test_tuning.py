"""Hyperparameter search: studies in Keel's store, trials as nested runs, pruning, failures,
bad input; trials in parallel processes on SQLite, PostgreSQL and a live server."""

from __future__ import annotations

from typing import Any

import optuna
import pytest

import keel
from keel.errors import AlreadyExists, Conflict, InvalidInput, KeelError, NotFound
from keel.hpo import create_study, list_studies, load_study, tune


def quadratic(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -4.0, 4.0)
    return (x - 1.0) ** 2


def reporting(trial: optuna.Trial) -> float:
    """Reports a curve; trials with a high x are bad from the first step on."""
    x = trial.suggest_int("x", 0, 10)
    for step in range(4):
        trial.report(float(x * 10 + step), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return float(x)


def flaky(trial: optuna.Trial) -> float:
    x = trial.suggest_int("x", 0, 3)
    if trial.number % 3 == 1:
        raise ValueError(f"no good at trial {trial.number}")
    if trial.number % 3 == 2:
        return float("nan")  # not a valid result: FAIL
    return float(x)


def always_fails(trial: optuna.Trial) -> float:
    raise RuntimeError("the data is gone")


def logs_itself(trial: optuna.Trial) -> float:
    keel.log_metric("own", 7.0)
    return trial.suggest_float("lr", 1e-3, 1.0, log=True)


def _children(parent_run_id: str) -> list[Any]:
    runs = keel.search_runs(max_results=1000)
    return [r for r in runs if r.parent_run_id == parent_run_id]


def test_a_study_is_stored_in_keel_and_loads_back(keel_env: Any) -> None:
    study = create_study("quad", direction="minimize")
    study.optimize(quadratic, n_trials=5)
    again = load_study("quad")
    assert [t.number for t in again.trials] == [0, 1, 2, 3, 4]
    assert again.best_value == study.best_value
    assert create_study("quad").best_params == study.best_params  # loaded
    assert [s.name for s in list_studies()] == ["quad"]
    with pytest.raises(AlreadyExists, match="'quad'"):
        create_study("quad", load_if_exists=False)
    with pytest.raises(Conflict, match="minimize, not maximize"):
        create_study("quad", direction="maximize")


def test_every_trial_is_a_nested_run_and_pruning_works(keel_env: Any) -> None:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    sampler = optuna.samplers.RandomSampler(seed=3)
    result = tune(reporting, n_trials=16, study="curves", pruner=pruner, sampler=sampler)
    assert sorted(result.trial_run_ids) == list(range(16))
    assert result.states.get("PRUNED", 0) >= 1
    assert sum(result.states.values()) == 16
    study = load_study("curves")
    best = min((t for t in study.trials if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert result.best_params == best.params == {"x": best.params["x"]}
    assert result.best_value == best.value
    assert result.best_trial == best.number
    parent = keel.get_run(result.parent_run_id)
    assert parent.name == "tune-curves"
    assert parent.status == "finished"
    assert parent.params == {"x": str(best.params["x"])}
    assert parent.metrics["best_value"] == best.value
    children = {r.run_id: r for r in _children(result.parent_run_id)}
    assert set(children) == set(result.trial_run_ids.values())
    for trial in study.trials:
        run = children[result.trial_run_ids[trial.number]]
        assert run.name == f"trial-{trial.number}"
        assert run.tags["keel.hpo.trial"] == str(trial.number)
        assert run.tags["keel.hpo.state"] == trial.state.name
        assert run.tags["keel.hpo.study"] == "curves"
        assert run.params == {"x": str(trial.params["x"])}
        history = keel.get_metric_history(run.run_id, "intermediate_value")
        assert [(m.step, m.value) for m in history] == sorted(trial.intermediate_values.items())
        if trial.state.name == "PRUNED":
            assert run.status == "killed"
            assert len(history) < 4
        else:
            assert run.status == "finished"
            assert run.metrics["value"] == trial.value


def test_trials_nest_under_the_active_run_and_see_keel_logging(keel_env: Any) -> None:
    with keel.start_run(experiment="mine", run_name="outer") as outer:
        result = tune(logs_itself, n_trials=3, study="lr", direction="maximize")
    assert result.parent_run_id == outer.run_id
    assert keel.get_run(outer.run_id).tags["keel.hpo.study"] == "lr"
    children = _children(outer.run_id)
    assert len(children) == 3
    assert all(r.metrics["own"] == 7.0 and "lr" in r.params for r in children)


def test_a_failing_objective_fails_its_trial_and_the_search_goes_on(keel_env: Any) -> None:
    result = tune(flaky, n_trials=6, study="flaky")
    assert result.states == {"COMPLETE": 2, "FAIL": 4}
    assert result.failures[1] == "ValueError: no good at trial 1"
    assert "nan" in result.failures[2]
    assert "not a finite number" in result.failures[2]
    failed = keel.get_run(result.trial_run_ids[4])
    assert failed.status == "failed"
    assert failed.tags["keel.hpo.state"] == "FAIL"
    assert failed.tags["keel.hpo.error"] == "ValueError: no good at trial 4"
    assert result.best_trial in (0, 3)


def test_no_completed_trial_is_an_error_naming_the_failure(keel_env: Any) -> None:
    with pytest.raises(
        KeelError, match=r"'doomed': no trial completed \(FAIL 2\).*the data is gone"
    ):
        tune(always_fails, n_trials=2, study="doomed")
    parent = keel.search_runs("doomed", filter="tags.keel.kind = 'hpo'")[0]
    assert parent.status == "failed"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_trials": 0}, InvalidInput, "n_trials must be an integer from 1"),
        ({"n_trials": -3}, InvalidInput, "n_trials must be an integer from 1"),
        ({"n_trials": True}, InvalidInput, "n_trials"),
        ({"n_trials": 10**9}, InvalidInput, "n_trials"),
        ({"n_trials": 2, "n_jobs": 0}, InvalidInput, "n_jobs"),
        ({"n_trials": 2, "executor": "dask"}, InvalidInput, "unknown executor 'dask'"),
        ({"n_trials": 2, "address": "auto"}, InvalidInput, "address is for the ray"),
        ({"n_trials": 2, "timeout": -1}, InvalidInput, "timeout"),
        ({"n_trials": 2, "direction": "up"}, InvalidInput, "invalid direction 'up'"),
        ({"n_trials": 2, "directions": []}, InvalidInput, "non-empty list"),
        (
            {"n_trials": 2, "direction": "minimize", "directions": ["minimize"]},
            InvalidInput,
            "not both",
        ),
        ({"n_trials": 2, "study": "../x"}, InvalidInput, "invalid study name"),
        ({"n_trials": 2, "study": "y" * 10_000}, InvalidInput, "invalid study name"),
        ({"n_trials": 2, "study": 12}, InvalidInput, "a name or a study"),
    ],
)
def test_bad_arguments_are_invalid_input(
    keel_env: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        tune(quadratic, **kwargs)


def test_bad_studies_and_objectives(keel_env: Any) -> None:
    with pytest.raises(NotFound, match="no study named 'ghost'"):
        load_study("ghost")
    with pytest.raises(InvalidInput, match="objective must be a function"):
        tune("not callable", n_trials=1)  # type: ignore[arg-type]
    memory = optuna.create_study()
    with pytest.raises(InvalidInput, match="not stored by Keel"):
        tune(quadratic, n_trials=2, n_jobs=2, study=memory)
    with pytest.raises(InvalidInput, match="belong to the study"):
        tune(quadratic, n_trials=1, study=memory, direction="maximize")
    lock = __import__("threading").Lock()
    with pytest.raises(InvalidInput, match="cannot be sent to other processes"):
        tune(lambda t: lock.locked() + t.suggest_int("a", 0, 1), n_trials=2, n_jobs=2, study="l")


def test_multi_objective_studies_keep_each_value(keel_env: Any) -> None:
    def two(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0, 1)
        return x, 1 - x

    result = tune(two, n_trials=4, study="pareto", directions=["minimize", "minimize"])
    assert isinstance(result.best_value, list)
    assert len(result.best_value) == 2
    run = keel.get_run(result.trial_run_ids[0])
    assert {"value_0", "value_1"} <= set(run.metrics)


@pytest.mark.slow
def test_trials_in_parallel_processes_share_one_study(backend: Any) -> None:
    """Two fresh processes on SQLite, PostgreSQL or through a live server: 10 trials in
    all, every trial number once, every trial a nested run of the one parent."""
    sampler = optuna.samplers.RandomSampler(seed=1)
    result = tune(quadratic, n_trials=10, n_jobs=2, study="par", sampler=sampler)
    study = load_study("par")
    assert sorted(t.number for t in study.trials) == list(range(10))
    assert sorted(result.trial_run_ids) == list(range(10))
    assert len(set(result.trial_run_ids.values())) == 10
    assert result.states == {"COMPLETE": 10}
    children = _children(result.parent_run_id)
    assert sorted(int(r.tags["keel.hpo.trial"]) for r in children) == list(range(10))
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 10  # reseeded
    # a second search continues the same study's numbering
    more = tune(quadratic, n_trials=4, n_jobs=2, study="par")
    assert sorted(more.trial_run_ids) == list(range(10, 14))
    assert len(load_study("par").trials) == 14


def slow(trial: optuna.Trial) -> float:
    import time

    time.sleep(0.3)
    return trial.suggest_float("x", 0, 1)


def test_a_timeout_stops_starting_trials_after_the_one_running(keel_env: Any) -> None:
    result = tune(slow, n_trials=50, study="slow", timeout=0.1)
    assert sorted(result.trial_run_ids) == [0]  # the first trial outlasts the timeout


def test_an_objective_can_stop_the_search(keel_env: Any) -> None:
    def stops(trial: optuna.Trial) -> float:
        if trial.number == 2:
            trial.study.stop()
        return float(trial.suggest_int("x", 0, 9))

    assert sorted(tune(stops, n_trials=10, study="stopper").trial_run_ids) == [0, 1, 2]


def test_a_study_with_a_corrupt_journal_is_an_integrity_error(keel_env: Any) -> None:
    from sqlalchemy import update

    from keel.errors import IntegrityError
    from keel.store.schema_hpo import hpo_journal
    from keel.stores import current_stores

    tune(quadratic, n_trials=2, study="torn")
    with current_stores().tracking.db.write() as conn:  # type: ignore[attr-defined]
        conn.execute(update(hpo_journal).where(hpo_journal.c.number == 3).values(log="\x00{"))
    with pytest.raises(IntegrityError, match="study 'torn': journal entry 3 is corrupt"):
        load_study("torn")
    with pytest.raises(IntegrityError, match="journal entry 3"):
        tune(quadratic, n_trials=1, study="torn")


def test_a_runner_that_cannot_start_is_reported_by_name(keel_env: Any) -> None:
    from keel.hpo import workers
    from keel.hpo.trials import TrialPlan

    env = workers.StoreEnv(str(keel_env.home), "bogus://nowhere", "file:///tmp/x")
    plan = TrialPlan("s", 1, "0" * 32, "0" * 32)
    (done,) = workers.run_local([workers.Job(env, plan, quadratic, None, None)])
    assert done.run_ids == {}
    assert done.error is not None
    assert "unsupported tracking URI 'bogus://nowhere'" in done.error


def test_tune_names_the_runners_that_failed(keel_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from keel.hpo import workers

    bogus = workers.StoreEnv(str(keel_env.home), "bogus://nowhere", "file:///tmp/x")
    monkeypatch.setattr(workers.StoreEnv, "current", classmethod(lambda cls: bogus))
    with pytest.raises(KeelError, match=r"'broken-env': 2 of 2 trial runners failed; runner 0"):
        tune(quadratic, n_trials=2, n_jobs=2, study="broken-env")
