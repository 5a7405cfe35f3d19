"""Live model performance from labelled predictions, and its decay against offline metrics.

``performance(predicted, target, proba=..., task=...)`` returns a ``Performance``:

* classifiers: ``accuracy``, ``precision``, ``recall``, ``f1`` (binary with the larger of
  the two sorted labels as the positive class; macro averages over the labels present
  otherwise, 0 where a label has no predictions) and ``roc_auc`` (binary: the positive
  class's probability; multiclass: one-vs-rest, macro) when probabilities are given, one
  column per class in sorted label order (what scikit-learn's ``classes_`` is), and every
  class appears in the targets: otherwise it is absent, never made up;
* regressors: ``rmse``, ``mae`` and ``r2`` (absent for fewer than two rows, where it is
  undefined).

The task is a classifier's when the targets are strings or booleans, when probabilities
are given, or when ``task="classification"``; numeric targets without probabilities are
a regression unless told otherwise.

``decay(live, offline, tolerance=...)`` compares each live metric with the offline metric of
the same name (what the model version's run logged). A decay is positive when the model
got worse: ``offline − live`` for scores (accuracy, precision, recall, f1, roc_auc, r2),
``live − offline`` for errors (rmse, mae). A score is flagged when it decayed by more than
``tolerance`` (absolute, default 0.05); an error when it grew by more than ``tolerance``
times the offline value (relative: an RMSE has the target's unit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CLASSIFICATION_METRICS",
    "ERROR_METRICS",
    "REGRESSION_METRICS",
    "Decay",
    "Performance",
    "decay",
    "performance",
]

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("rmse", "mae", "r2")
ERROR_METRICS = frozenset({"rmse", "mae"})  # lower is better
TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Performance:
    """Live metrics over the labelled rows: the task, how many rows, and the values."""

    task: str
    rows: int
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it is absent

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {
            "task": self.task,
            "rows": self.rows,
            "metrics": dict(self.metrics),
            "skipped": dict(self.skipped),
        }


@dataclass(frozen=True)
class Decay:
    """Live metrics against offline ones: the decay per metric and those past tolerance."""

    offline: dict[str, float]
    decay: dict[str, float]
    degraded: tuple[str, ...]
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as JSON-ready data."""
        return {
            "offline": dict(self.offline),
            "decay": dict(self.decay),
            "degraded": list(self.degraded),
            "tolerance": self.tolerance,
        }


def _labels(values: Any) -> np.ndarray:
    import numpy as np
    import pandas as pd

    series = pd.Series(values)
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        return series.astype(str).to_numpy(dtype=object)
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(str).to_numpy(dtype=object)
    return series.to_numpy(dtype=np.float64)


def _is_label_like(values: Any) -> bool:
    import pandas as pd

    series = pd.Series(values)
    return (
        series.dtype == object
        or pd.api.types.is_string_dtype(series.dtype)
        or pd.api.types.is_bool_dtype(series.dtype)
    )


def performance(
    predicted: Any,
    target: Any,
    *,
    proba: Any = None,
    task: str | None = None,
) -> Performance:
    """Return the ``Performance`` of ``predicted`` against ``target`` (see the module doc).

    Rows whose target or prediction is missing (or, for a regression, not finite) are left
    out. ``proba`` is an array of shape (rows, classes). No usable row is an
    ``InvalidInput``.
    """
    import numpy as np

    if task is not None and task not in TASKS:
        raise InvalidInput(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    pred = np.asarray(predicted, dtype=object)
    true = np.asarray(target, dtype=object)
    if pred.ndim != 1 or true.ndim != 1 or len(pred) != len(true):
        raise InvalidInput(
            f"predicted and target must be 1-D and the same length, not {pred.shape} and "
            f"{true.shape}"
        )
    probs = None
    if proba is not None:
        probs = np.asarray(proba, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[0] != len(pred) or probs.shape[1] < 2:
            raise InvalidInput(
                f"proba must have one row per prediction and at least two class columns, "
                f"not shape {probs.shape}"
            )
    if task is None:
        label_like = _is_label_like(target) or _is_label_like(predicted)
        task = "classification" if label_like or probs is not None else "regression"
    if task == "regression":
        return _regression(predicted, target)
    return _classification(predicted, target, probs)


def _usable(predicted: Any, target: Any) -> tuple[Any, Any, np.ndarray]:
    import pandas as pd

    pred = pd.Series(predicted).reset_index(drop=True)
    true = pd.Series(target).reset_index(drop=True)
    keep = (pred.notna() & true.notna()).to_numpy()
    return pred[keep], true[keep], keep


def _regression(predicted: Any, target: Any) -> Performance:
    import numpy as np
    import pandas as pd
    from sklearn import metrics

    try:
        pred = pd.to_numeric(pd.Series(predicted), errors="raise").to_numpy(dtype=np.float64)
        true = pd.to_numeric(pd.Series(target), errors="raise").to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"a regression needs numeric predictions and targets: {exc}") from exc
    keep = np.isfinite(pred) & np.isfinite(true)
    pred, true = pred[keep], true[keep]
    if len(pred) == 0:
        raise InvalidInput("no row has both a finite prediction and a finite target")
    skipped = {}
    # Values near ±1.8e308 overflow a squared error to inf: that metric is then absent.
    with np.errstate(over="ignore", invalid="ignore"):
        values = {
            "rmse": float(math.sqrt(metrics.mean_squared_error(true, pred))),
            "mae": float(metrics.mean_absolute_error(true, pred)),
        }
        if len(pred) >= 2:
            values["r2"] = float(metrics.r2_score(true, pred))
        else:
            skipped["r2"] = "needs at least two labelled rows"
    for name in [k for k, v in values.items() if not math.isfinite(v)]:
        skipped[name] = "overflows float64 arithmetic"
        del values[name]
    return Performance("regression", len(pred), values, skipped)


def _classification(predicted: Any, target: Any, probs: np.ndarray | None) -> Performance:
    import numpy as np
    from sklearn import metrics

    pred_s, true_s, keep = _usable(predicted, target)
    if len(pred_s) == 0:
        raise InvalidInput("no row has both a prediction and a target")
    pred, true = _labels(pred_s), _labels(true_s)
    if pred.dtype != true.dtype:  # "1" vs 1.0: compare as text so one label is one class
        pred = np.asarray([str(_plain(v)) for v in pred], dtype=object)
        true = np.asarray([str(_plain(v)) for v in true], dtype=object)
    labels = np.unique(np.concatenate([pred, true]))
    values = {"accuracy": float(metrics.accuracy_score(true, pred))}
    if len(labels) == 2:
        options: dict[str, Any] = {"average": "binary", "pos_label": labels[1]}
    else:
        options = {"average": "macro", "labels": labels}
    # One pass over the confusion counts gives all three (not three sklearn calls).
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        true, pred, zero_division=0, **options
    )
    values.update(precision=float(precision), recall=float(recall), f1=float(f1))
    skipped: dict[str, str] = {}
    if probs is None:
        skipped["roc_auc"] = "no predicted probabilities (output.predict_proba.*)"
    else:
        scores = probs[keep]
        classes = np.unique(true)
        finite = np.isfinite(scores).all(axis=1)
        if not finite.all():
            scores, true, classes = scores[finite], true[finite], np.unique(true[finite])
        if len(classes) < 2:
            skipped["roc_auc"] = "needs targets of at least two classes"
        elif len(classes) != scores.shape[1]:
            skipped["roc_auc"] = (
                f"{scores.shape[1]} probability columns but {len(classes)} classes in the "
                "targets: the columns cannot be matched to classes"
            )
        elif len(classes) == 2:
            values["roc_auc"] = float(metrics.roc_auc_score(true == classes[1], scores[:, 1]))
        else:
            normed = scores / scores.sum(axis=1, keepdims=True)
            values["roc_auc"] = float(
                metrics.roc_auc_score(true, normed, multi_class="ovr", labels=classes)
            )
    return Performance("classification", len(pred), values, skipped)


def _plain(value: Any) -> Any:
    # 1.0 and 1 are one label; a float target of a class label is written as its integer.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def decay(
    live: Mapping[str, float], offline: Mapping[str, float], *, tolerance: float = 0.05
) -> Decay:
    """Return the ``Decay`` of the live metrics against the offline ones of the same names."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        raise InvalidInput(f"tolerance must be a number, not {tolerance!r}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise InvalidInput(f"tolerance must be a finite number >= 0, not {tolerance!r}")
    known = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
    shared: dict[str, float] = {}
    decays: dict[str, float] = {}
    degraded: list[str] = []
    for name in known:
        if name not in live or name not in offline:
            continue
        before, now = float(offline[name]), float(live[name])
        if not (math.isfinite(before) and math.isfinite(now)):
            continue
        shared[name] = before
        if name in ERROR_METRICS:
            worse = now - before
            flagged = worse > tolerance * abs(before)
        else:
            worse = before - now
            flagged = worse > tolerance
        decays[name] = worse
        if flagged:
            degraded.append(name)
    return Decay(shared, decays, tuple(degraded), float(tolerance))
