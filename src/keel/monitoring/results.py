"""What drift returns: per-column results and the dataset verdict, as plain dataclasses."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ColumnDrift", "Distribution", "DriftReport", "MultivariateDrift"]

P_VALUE_METHODS = frozenset({"ks", "chisquare"})


@dataclass(frozen=True)
class Distribution:
    """Reference and current counts over the same buckets, for plots.

    Numeric columns: ``labels`` are the reference's bin ranges, with a bucket below its
    minimum and one above its maximum first and last. Categorical columns: the most
    frequent categories (at most 20), then ``(other)`` for the rest if any.
    """

    labels: tuple[str, ...]
    reference: tuple[int, ...]
    current: tuple[int, ...]


@dataclass(frozen=True)
class ColumnDrift:
    """One column compared: the method, its statistic, the threshold, and the verdict.

    For p-value methods (``ks``, ``chisquare``) ``p_value`` is set and the column drifted
    when ``p_value < threshold``; for distances (``wasserstein``, ``jensenshannon``,
    ``psi``) ``p_value`` is None and it drifted when ``statistic >= threshold``.
    ``approximate`` is true when the reference was a profile and the method had to go
    through its quantile sketch (KS, Wasserstein).
    """

    column: str
    kind: str  # "numeric" or "categorical"
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    approximate: bool = False
    distribution: Distribution | None = None

    @property
    def score(self) -> float:
        """The number compared with the threshold: the p-value, or the distance."""
        return self.statistic if self.p_value is None else self.p_value


@dataclass(frozen=True)
class MultivariateDrift:
    """A domain classifier's verdict: can a model tell reference rows from current rows?

    ``roc_auc`` is the mean cross-validated ROC AUC (0.5: indistinguishable); the data
    drifted when it is at least ``threshold``.
    """

    roc_auc: float
    roc_auc_std: float
    threshold: float
    drifted: bool
    folds: int
    rows_reference: int
    rows_current: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class DriftReport:
    """Drift of a current dataset against a reference, column by column and overall.

    ``share`` is the fraction of the compared feature columns that drifted (prediction
    and target are reported apart and not counted) and ``dataset_drifted`` is
    ``share >= drift_share``. ``skipped`` maps each column that no statistic could
    compare to the reason; ``missing_columns`` are reference columns absent from the
    current data and ``extra_columns`` current columns the reference does not have.
    """

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    drifted_columns: int
    share: float
    dataset_drifted: bool
    rows_reference: int
    rows_current: int
    skipped: dict[str, str] = field(default_factory=dict)
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    prediction: ColumnDrift | None = None
    target: ColumnDrift | None = None
    multivariate: MultivariateDrift | None = None

    def column(self, name: str) -> ColumnDrift:
        """Return the result for one column (feature, prediction or target)."""
        for result in (*self.columns, self.prediction, self.target):
            if result is not None and result.column == name:
                return result
        from keel.errors import NotFound

        raise NotFound(f"no drift result for column {name!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (non-finite statistics become None)."""
        data = asdict(self)
        data["columns"] = [_clean(c) for c in data["columns"]]
        for key in ("prediction", "target"):
            if data[key] is not None:
                data[key] = _clean(data[key])
        if data["multivariate"] is not None:
            data["multivariate"]["columns"] = list(data["multivariate"]["columns"])
        data["missing_columns"] = list(self.missing_columns)
        data["extra_columns"] = list(self.extra_columns)
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        """Return the report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def _clean(item: dict[str, Any]) -> dict[str, Any]:
    for key in ("statistic", "p_value"):
        value = item.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            item[key] = None
    return item
