"""Running trials: each one asked of the study, run as a nested Keel run, told back.

The same loop runs in this process, in a worker process or in a Ray task. A trial's run
starts before the objective (so ``keel.log_metric`` inside it lands on the trial) and,
once the study is told, gets the trial's params, its intermediate values as the
``intermediate_value`` metric by step, its final value(s) and its state as tags, in one
batch; it ends finished (COMPLETE), killed (PRUNED) or failed (FAIL).

A failed trial keeps why, on the trial itself (user attribute ``keel.fail_reason``, so
``keel hpo show`` and anything reading the study see it) and on its run (tag
``keel.hpo.error``): the objective's exception, or a result that is no valid value. Keel
fails a non-finite value (NaN, +inf, -inf) with "the objective returned inf, not a finite
number": Optuna 5 fails only NaN, and only logs its reason ("The value nan is not
acceptable"), storing none; an infinite value it would keep as COMPLETE, where it could
not be stored as a metric (JSON has no infinity) and would win or lose every comparison.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import optuna
from optuna.trial import TrialState

from keel.store.clock import now_ms
from keel.tracking.entities import RunStatus
from keel.tracking.validation import check_key, param_value

__all__ = [
    "ERROR",
    "FAIL_REASON",
    "KIND",
    "NUMBER",
    "RUN_ID",
    "STATE",
    "STUDY",
    "TrialPlan",
    "TrialsDone",
    "metric_names",
    "run_trials",
]

KIND, STUDY, NUMBER, STATE, ERROR = (
    "keel.kind",
    "keel.hpo.study",
    "keel.hpo.trial",
    "keel.hpo.state",
    "keel.hpo.error",
)
INTERMEDIATE = "intermediate_value"
RUN_ID = "keel.run_id"  # the trial's user attribute naming its run
FAIL_REASON = "keel.fail_reason"  # the trial's user attribute saying why it failed
_MAX_ERROR = 4000
_RUN_STATUS = {
    TrialState.COMPLETE: RunStatus.FINISHED,
    TrialState.PRUNED: RunStatus.KILLED,
    TrialState.FAIL: RunStatus.FAILED,
}


@dataclass(frozen=True)
class TrialPlan:
    """What one runner does: how many trials, by when, and where their runs go."""

    study: str
    n_trials: int
    parent_run_id: str
    experiment_id: str
    deadline: float | None = None  # time.time() after which no new trial starts


@dataclass
class TrialsDone:
    """What a runner did: each trial's run id and, for failed ones, the error."""

    run_ids: dict[int, str] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    error: str | None = None  # the runner itself could not run (not a trial's failure)


def metric_names(n_objectives: int) -> list[str]:
    """Return the metric names of a trial's final values: ``value``, or ``value_0``…"""
    return ["value"] if n_objectives == 1 else [f"value_{i}" for i in range(n_objectives)]


def _values(returned: Any, n: int) -> tuple[list[float] | None, str | None]:
    """Return the objective's result as floats, or why it is not a valid result."""
    items = [returned] if n == 1 else returned
    if n > 1 and (isinstance(items, str | bytes) or not hasattr(items, "__len__")):
        return None, f"the objective returned {returned!r:.100}, not {n} numbers"
    if len(items) != n:
        return None, f"the objective returned {len(items)} values for {n} objectives"
    out = []
    for i, v in enumerate(items):
        which = "" if n == 1 else f" as value {i}"
        if isinstance(v, bool) or not isinstance(v, Real):
            return None, f"the objective returned {v!r:.100}{which}, not a finite number"
        if not math.isfinite(float(v)):
            # float(): numpy's repr would say np.float64(inf) where "inf" is the point
            return None, f"the objective returned {float(v)!r}{which}, not a finite number"
        out.append(float(v))
    return out, None


def run_trials(
    study: optuna.Study, objective: Callable[[optuna.Trial], Any], plan: TrialPlan
) -> TrialsDone:
    """Return what running up to ``plan.n_trials`` trials of ``study`` did (runs written)."""
    done = TrialsDone()
    # As in Study.optimize: study.stop() (an objective's, or GridSampler's once its grid is
    # done) ends the loop after the current trial, instead of raising outside optimize.
    local = study._thread_local
    was_in_loop, local.in_optimize_loop, study._stop_flag = local.in_optimize_loop, True, False
    try:
        for _ in range(plan.n_trials):
            _run_one(study, objective, plan, done)
            # As Optuna's timeout: checked after each trial, so every runner runs one.
            if study._stop_flag or (plan.deadline is not None and time.time() >= plan.deadline):
                break
    finally:
        local.in_optimize_loop = was_in_loop
    return done


def _run_one(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    plan: TrialPlan,
    done: TrialsDone,
) -> None:
    from keel.tracking.fluent import start_run

    n = len(study.directions)
    trial = study.ask()
    tags = {KIND: "hpo.trial", STUDY: plan.study, NUMBER: str(trial.number)}
    run = start_run(
        run_name=f"trial-{trial.number}",
        experiment_id=plan.experiment_id,
        parent_run_id=plan.parent_run_id,
        tags=tags,
    )
    done.run_ids[trial.number] = run.run_id
    trial.set_user_attr(RUN_ID, run.run_id)  # the study links each trial to its run
    error: str | None = None
    try:
        values, error = _values(objective(trial), n)
        state = TrialState.COMPLETE if error is None else TrialState.FAIL
    except optuna.TrialPruned:
        values, state = None, TrialState.PRUNED
    except Exception as exc:  # noqa: BLE001 - a trial's error is recorded; the study goes on
        values, state = None, TrialState.FAIL
        error = f"{type(exc).__name__}: {exc}"
    except BaseException as exc:  # Ctrl-C, SystemExit: fail the trial, kill its run, stop
        try:
            trial.set_user_attr(FAIL_REASON, f"interrupted ({type(exc).__name__})")
            study.tell(trial, state=TrialState.FAIL)
        finally:
            run.end(RunStatus.KILLED)
        raise
    try:
        if error is not None:
            error = error[:_MAX_ERROR]
            # Set before tell: a finished trial takes no more attributes.
            trial.set_user_attr(FAIL_REASON, error)
        if state is TrialState.COMPLETE:
            frozen = study.tell(trial, values)
        else:
            frozen = study.tell(trial, state=state)
        _record(run, frozen, error, n)
    except BaseException:
        run.end(RunStatus.FAILED)
        raise
    if error is not None:
        done.failures[trial.number] = error
    run.end(_RUN_STATUS.get(frozen.state, RunStatus.FAILED))


def _record(run: Any, frozen: optuna.trial.FrozenTrial, error: str | None, n: int) -> None:
    ts = now_ms()
    metrics = [
        (INTERMEDIATE, float(v), ts, int(step))
        for step, v in sorted(frozen.intermediate_values.items())
    ]
    if frozen.values is not None:
        names = metric_names(n)
        metrics += [(k, float(v), ts, 0) for k, v in zip(names, frozen.values, strict=True)]
    params = {check_key("param", k): param_value(k, v) for k, v in frozen.params.items()}
    tags = {STATE: frozen.state.name}
    if error is not None:
        tags[ERROR] = error
    from keel.stores import current_stores

    run.flush()  # what the objective logged itself goes first
    current_stores().tracking.log_batch(run.run_id, metrics=metrics, params=params, tags=tags)
