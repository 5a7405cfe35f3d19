"""Side-by-side comparison of runs: which params and metrics differ, and which run is best."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.tracking.entities import float_to_json

if TYPE_CHECKING:
    from keel.tracking.entities import Run

__all__ = ["Row", "compare_runs", "metric_goal"]

# A metric whose name says it measures a cost is better lower; any other is better higher.
_LOWER_IS_BETTER = re.compile(
    r"loss|err|mse|mae|mape|rmse|perplexity|brier|latency|duration|time|cost|regret", re.I
)


def metric_goal(key: str) -> str:
    """Return "min" when a lower value of metric ``key`` is better, else "max"."""
    return "min" if _LOWER_IS_BETTER.search(key) else "max"


@dataclass(frozen=True)
class Row:
    """One param or metric across the compared runs (None where a run lacks it)."""

    key: str
    values: tuple[Any, ...]
    differs: bool
    goal: str | None = None
    best: tuple[int, ...] = ()

    def to_dict(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """Return a JSON-able dict (non-finite metrics as strings, best as run ids)."""
        values = [float_to_json(v) if isinstance(v, float) else v for v in self.values]
        out: dict[str, Any] = {"key": self.key, "values": values, "differs": self.differs}
        if self.goal is not None:
            out["goal"] = self.goal
            out["best"] = [run_ids[i] for i in self.best]
        return out


def _same(values: Sequence[Any]) -> bool:
    # NaN equals NaN here: two runs that both diverged do not "differ".
    return len({repr(v) for v in values}) <= 1


def _best(values: Sequence[float | None], goal: str) -> tuple[int, ...]:
    finite = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if len(finite) < 2 or _same([v for _, v in finite]):
        return ()
    target = (min if goal == "min" else max)(v for _, v in finite)
    return tuple(i for i, v in finite if v == target)


def compare_runs(runs: Sequence[Run]) -> tuple[list[Row], list[Row]]:
    """Return (param rows, metric rows) for ``runs``, each sorted by key."""
    param_keys = sorted({k for r in runs for k in r.params})
    metric_keys = sorted({k for r in runs for k in r.metrics})
    params = []
    for key in param_keys:
        values = tuple(r.params.get(key) for r in runs)
        params.append(Row(key, values, not _same(values)))
    metrics = []
    for key in metric_keys:
        values = tuple(r.metrics.get(key) for r in runs)
        goal = metric_goal(key)
        metrics.append(Row(key, values, not _same(values), goal, _best(values, goal)))
    return params, metrics
