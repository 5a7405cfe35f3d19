"""``keel.tune``: run a study's trials here, in worker processes or on Ray; get the best.

    result = keel.tune(objective, n_trials=40, n_jobs=4, study="depth", direction="maximize")
    result.best_params, result.best_value, result.trial_run_ids[0]

The trials' runs nest under the active run, or under a run ``tune-<study>`` made for
the search (in the experiment named after the study), which gets the best params and
``best_value``. ``n_trials`` is the total: it is split between the ``n_jobs`` runners.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from keel.errors import InvalidInput, KeelError
from keel.hpo.journal import create_study, is_keel_study
from keel.hpo.trials import KIND, NUMBER, STUDY, TrialPlan, TrialsDone, metric_names, run_trials

__all__ = ["EXECUTORS", "TuneResult", "best_trial", "tune"]

EXECUTORS = ("local", "ray")
MAX_TRIALS = 1_000_000
MAX_JOBS = 256


@dataclass(frozen=True)
class TuneResult:
    """What a search found: the best trial's params and value, and each trial's run."""

    study_name: str
    best_params: dict[str, Any]
    best_value: float | list[float]
    best_trial: int
    trial_run_ids: dict[int, str]  # trial number -> its run, for this call's trials
    parent_run_id: str
    failures: dict[int, str]  # trial number -> the error of each failed trial
    states: dict[str, int]  # how many of this call's trials ended COMPLETE, PRUNED, FAIL


def _check(objective: Any, n_trials: Any, n_jobs: Any, executor: Any, timeout: Any) -> None:
    if not callable(objective):
        raise InvalidInput(f"objective must be a function of a trial, got {objective!r:.100}")
    for label, value, top in (("n_trials", n_trials, MAX_TRIALS), ("n_jobs", n_jobs, MAX_JOBS)):
        if type(value) is not int or not 1 <= value <= top:
            raise InvalidInput(f"{label} must be an integer from 1 to {top}, got {value!r:.100}")
    if executor not in EXECUTORS:
        raise InvalidInput(f"unknown executor {executor!r:.100}; use one of {', '.join(EXECUTORS)}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= 7 * 86400
    ):
        raise InvalidInput("timeout must be a positive number of seconds (at most 7 days)")


def _study(
    study: Any,
    direction: str | None,
    directions: Sequence[str] | None,
    sampler: Any,
    pruner: Any,
) -> optuna.Study:
    if isinstance(study, optuna.Study):
        if direction is not None or directions is not None or sampler or pruner:
            raise InvalidInput(
                "direction, sampler and pruner belong to the study: pass them to "
                "keel.create_study, or pass the study's name here"
            )
        return study
    if study is None:
        study = f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    elif not isinstance(study, str):
        raise InvalidInput(
            f"study must be a name or a study from keel.create_study, got {type(study).__name__}"
        )
    return create_study(
        study, direction=direction, directions=directions, sampler=sampler, pruner=pruner
    )


def tune(
    objective: Callable[[optuna.Trial], Any],
    *,
    n_trials: int,
    n_jobs: int = 1,
    study: optuna.Study | str | None = None,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    executor: str = "local",
    address: str | None = None,
    timeout: float | None = None,
    experiment: str | None = None,
) -> TuneResult:
    """Return the best of ``n_trials`` trials of ``objective`` on a study in Keel's store.

    ``study`` is a name (created if new, with ``direction``: default minimize), a study
    from ``keel.create_study``, or None for a new one. ``n_jobs`` runners share the trials:
    fresh local processes (``executor="local"``; 1 runs them in this process) or Ray tasks
    (``executor="ray"``, at ``address`` or a local instance). A trial that raises is
    recorded FAIL and the search goes on; ``KeelError`` if no trial completes.
    """
    _check(objective, n_trials, n_jobs, executor, timeout)
    if address is not None and executor != "ray":
        raise InvalidInput(f"an address is for the ray executor, not {executor!r}")
    opt = _study(study, direction, directions, sampler, pruner)
    parallel = n_jobs > 1 or executor == "ray"
    if parallel and not is_keel_study(opt):
        raise InvalidInput(
            f"study {opt.study_name!r} is not stored by Keel, so other processes cannot share "
            "it; make it with keel.create_study"
        )
    from keel.tracking.entities import RunStatus
    from keel.tracking.fluent import active_run, start_run

    name = opt.study_name
    parent = active_run()
    owned = parent is None
    if parent is None:
        parent = start_run(
            experiment=experiment or name, run_name=f"tune-{name}", tags={KIND: "hpo"}
        )
    parent.set_tag(STUDY, name)
    deadline = None if timeout is None else time.time() + timeout
    try:
        done = _run(opt, objective, n_trials, n_jobs, executor, address, deadline, parent)
        result = _result(opt, done, parent.run_id)
        if owned:
            _log_best(parent, result, len(opt.directions))
    except BaseException as exc:
        if owned:
            parent.end(RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    if owned:
        parent.end(RunStatus.FINISHED)
    return result


def _shares(n_trials: int, n_jobs: int) -> list[int]:
    base, extra = divmod(n_trials, n_jobs)
    return [s for s in (base + (i < extra) for i in range(n_jobs)) if s]


def _run(
    study: optuna.Study,
    objective: Callable[..., Any],
    n_trials: int,
    n_jobs: int,
    executor: str,
    address: str | None,
    deadline: float | None,
    parent: Any,
) -> TrialsDone:
    def plan(n: int) -> TrialPlan:
        return TrialPlan(study.study_name, n, parent.run_id, parent.experiment_id, deadline)

    if n_jobs == 1 and executor == "local":
        return run_trials(study, objective, plan(n_trials))
    import cloudpickle

    from keel.hpo import workers

    try:
        cloudpickle.dumps(objective)
    except Exception as exc:  # noqa: BLE001 - e.g. it holds a lock or an open connection
        raise InvalidInput(
            f"the objective cannot be sent to other processes ({type(exc).__name__}: {exc}); "
            "use n_jobs=1, or keep unpicklable objects out of it"
        ) from None
    env = workers.StoreEnv.current()
    jobs = [
        workers.Job(env, plan(n), objective, study.sampler, study.pruner)
        for n in _shares(n_trials, n_jobs)
    ]
    if executor == "local":
        results = workers.run_local(jobs)
    else:
        results = workers.run_ray(jobs, address=address)
    merged = TrialsDone()
    errors = []
    for i, r in enumerate(results):
        merged.run_ids.update(r.run_ids)
        merged.failures.update(r.failures)
        if r.error is not None:
            errors.append(f"runner {i}: {r.error}")
    if errors:
        raise KeelError(
            f"study {study.study_name!r}: {len(errors)} of {len(results)} trial runners "
            f"failed; {'; '.join(errors)}"[:8000]
        )
    return merged


def _result(study: optuna.Study, done: TrialsDone, parent_run_id: str) -> TuneResult:
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    states = Counter(trials[n].state.name for n in done.run_ids if n in trials)
    best = best_trial(study)
    if best is None:
        first = min(done.failures.items(), default=None)
        why = f"; trial {first[0]} failed: {first[1]}" if first else ""
        raise KeelError(
            f"study {study.study_name!r}: no trial completed "
            f"({', '.join(f'{k} {v}' for k, v in sorted(states.items())) or 'none ran'}){why}"[
                :4000
            ]
        )
    values = best.values or []
    return TuneResult(
        study_name=study.study_name,
        best_params=dict(best.params),
        best_value=values[0] if len(values) == 1 else list(values),
        best_trial=best.number,
        trial_run_ids=dict(sorted(done.run_ids.items())),
        parent_run_id=parent_run_id,
        failures=dict(sorted(done.failures.items())),
        states=dict(states),
    )


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    """Return the study's best completed trial (the lowest-numbered on the Pareto front of
    a multi-objective study), or None if none has completed."""
    if len(study.directions) == 1:
        try:
            return study.best_trial
        except ValueError:  # no trial completed
            return None
    front = sorted(study.best_trials, key=lambda t: t.number)
    return front[0] if front else None


def _log_best(parent: Any, result: TuneResult, n: int) -> None:
    values = result.best_value if isinstance(result.best_value, list) else [result.best_value]
    parent.log_params(result.best_params)
    parent.log_metrics(
        {f"best_{k}": v for k, v in zip(metric_names(n), values, strict=True) if math.isfinite(v)}
    )
    parent.set_tag(NUMBER, str(result.best_trial))
