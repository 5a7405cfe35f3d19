"""``keel.tuning_step``: a pipeline step that runs a search and outputs the best params.

    def objective(trial, data):                 # inputs after ``trial`` come from steps
        return cv_error(data, depth=trial.suggest_int("depth", 2, 12))

    tune = keel.tuning_step(objective, n_trials=40, n_jobs=2)

    @keel.pipeline
    def train_pipeline():
        data = validate()
        train(data, params=tune(data))          # ``params`` is a dict: the best params

The step's parameters are the objective's own (after ``trial``) plus ``n_trials``,
``study`` and ``objective`` (the objective's name and code digest), so a changed objective,
trial budget or study re-runs the search and anything else is cached like any step.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from keel.errors import InvalidInput

__all__ = ["tuning_step"]

_CONFIG = ("n_trials", "study", "objective")
_P = inspect.Parameter


def _objective_id(objective: Callable[..., Any]) -> str:
    from keel.pipelines.cache import code_digest

    name = f"{getattr(objective, '__module__', '?')}.{getattr(objective, '__qualname__', '?')}"
    return f"{name}@{code_digest(objective)[:16]}"


def tuning_step(
    objective: Callable[..., Any],
    *,
    n_trials: int,
    n_jobs: int = 1,
    study: str | None = None,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    sampler: Any = None,
    pruner: Any = None,
    executor: str = "local",
    address: str | None = None,
    timeout: float | None = None,
    name: str = "tune",
    retries: int = 0,
    step_timeout: float | None = None,
) -> Any:
    """Return a :class:`~keel.Step` running ``keel.tune`` on ``objective``; its output is the
    best params (a dict). Without ``study``, each run of the step searches a new study."""
    from keel.hpo.search import _check
    from keel.hpo.store import check_study_name
    from keel.pipelines.steps import Step, StepOptions

    if not inspect.isfunction(objective):
        raise InvalidInput(
            f"tuning step {name!r}: the objective must be a plain function, got "
            f"{type(objective).__name__}"
        )
    _check(objective, n_trials, n_jobs, executor, timeout)
    if study is not None:
        check_study_name(study)
    params = list(inspect.signature(objective).parameters.values())
    if not params or params[0].kind not in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD):
        raise InvalidInput(
            f"tuning step {name!r}: the objective must take the trial as its first argument"
        )
    inputs = [
        p.replace(kind=_P.POSITIONAL_OR_KEYWORD) if p.kind is _P.POSITIONAL_ONLY else p
        for p in params[1:]
    ]
    clash = [p.name for p in inputs if p.name in _CONFIG]
    if clash:
        raise InvalidInput(
            f"tuning step {name!r}: the objective's argument {clash[0]!r} clashes with the "
            f"step's own parameter; rename it (the step adds {', '.join(_CONFIG)})"
        )
    config = [
        _P("n_trials", _P.KEYWORD_ONLY, default=n_trials, annotation=int),
        _P("study", _P.KEYWORD_ONLY, default=study, annotation=str | None),
        _P("objective", _P.KEYWORD_ONLY, default=_objective_id(objective), annotation=str),
    ]
    signature = inspect.Signature([*inputs, *config], return_annotation=dict[str, Any])
    hints = getattr(objective, "__annotations__", {})
    search = {
        "n_jobs": n_jobs,
        "direction": direction,
        "directions": directions,
        "sampler": sampler,
        "pruner": pruner,
        "executor": executor,
        "address": address,
        "timeout": timeout,
    }

    def run_search(*args: Any, **kwargs: Any) -> dict[str, Any]:
        from keel.hpo.search import tune

        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"tuning step {name!r}: {exc}") from None
        bound.apply_defaults()
        values = dict(bound.arguments)
        trials, study_name = values.pop("n_trials"), values.pop("study")
        values.pop("objective")
        bound_objective = functools.partial(objective, **values) if values else objective
        result = tune(bound_objective, n_trials=trials, study=study_name, **search)
        return result.best_params

    run_search.__signature__ = signature  # type: ignore[attr-defined]
    run_search.__annotations__ = {
        **{p.name: hints[p.name] for p in inputs if p.name in hints},
        "n_trials": int,
        "study": str | None,
        "objective": str,
        "return": dict[str, Any],
    }
    run_search.__name__ = run_search.__qualname__ = name.replace("-", "_")
    run_search.__doc__ = f"Search {objective.__name__}'s parameters; return the best ones."
    return Step(run_search, StepOptions(name=name, retries=retries, timeout=step_timeout))
