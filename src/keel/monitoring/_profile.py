"""A compact, JSON-serialisable profile of a reference (training) dataset.

``profile(frame)`` summarises each column so drift can be computed later without the raw
rows: its dtype and family, counts (values, missing, ±inf), and

* for numbers: min, max, mean, population std, a quantile sketch (``quantiles`` values at
  evenly spaced levels 0..1, numpy's linear method) and a fixed histogram: ``bins``
  equal-width bins over [min, max] (the last one closed) plus one bin below and one above,
  which stay empty for the reference and catch current values outside its range;
* for strings, booleans and numbers with at most ``CATEGORICAL_MAX_DISTINCT`` (5) distinct
  values: the category counts, the ``max_categories`` most frequent kept and the rest
  pooled into one ``other`` count.

From a profile, the binned methods (PSI, Jensen–Shannon, chi-square) give exactly what
the raw reference gives (same bins, same counts) unless categories were pooled; KS and
Wasserstein are approximations through the quantile sketch (see ``keel.monitoring.stats``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring._frames import (
    BOOL,
    NUMBER,
    STRING,
    Categories,
    NumericValues,
    categories,
    classify,
    load_frame,
    numeric_values,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CATEGORICAL_MAX_DISTINCT",
    "ColumnProfile",
    "NumericSketch",
    "ReferenceProfile",
    "bin_counts",
    "bin_edges",
    "profile",
]

FORMAT = "keel.profile/1"
CATEGORICAL_MAX_DISTINCT = 5  # numbers with this few distinct values are compared as categories
MAX_BINS = 10_000
MAX_QUANTILES = 100_001
NUMERIC, CATEGORICAL, UNSUPPORTED = "numeric", "categorical", "unsupported"


@dataclass(frozen=True)
class NumericSketch:
    """Summary of a numeric column's finite values: range, moments, quantiles, histogram."""

    min: float
    max: float
    mean: float
    std: float
    quantiles: tuple[float, ...]
    histogram: tuple[int, ...]  # below min, bins..., above max


@dataclass(frozen=True)
class ColumnProfile:
    """One column of a reference profile."""

    name: str
    dtype: str
    family: str | None  # "number", "string", "bool"; None when unsupported
    kind: str  # "numeric", "categorical" or "unsupported"
    count: int  # values used by the statistics (non-missing, finite)
    missing: int
    non_finite: int = 0
    distinct: int = 0
    reason: str = ""  # why the column is unsupported
    numeric: NumericSketch | None = None
    category_values: tuple[Any, ...] = ()
    category_counts: tuple[int, ...] = ()
    other: int = 0  # values of the categories not kept (beyond max_categories)
    capped: bool = False


@dataclass(frozen=True)
class ReferenceProfile:
    """A dataset's profile: row count, the sketch settings, and one entry per column."""

    rows: int
    bins: int
    quantiles: int
    max_categories: int
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the profile as JSON-ready data (see ``from_dict``)."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "bins": self.bins,
            "quantiles": self.quantiles,
            "max_categories": self.max_categories,
            "columns": {name: _column_dict(c) for name, c in self.columns.items()},
        }

    def to_json(self) -> str:
        """Return the profile as a JSON string."""
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> ReferenceProfile:
        """Return the profile stored by ``to_dict``; malformed data is an ``InvalidInput``."""
        from keel.monitoring._profile_io import read_profile

        return read_profile(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        """Return the profile stored by ``to_json``; bad JSON is an ``InvalidInput``."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"the profile is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def _column_dict(c: ColumnProfile) -> dict[str, Any]:
    out: dict[str, Any] = {
        "dtype": c.dtype,
        "family": c.family,
        "kind": c.kind,
        "count": c.count,
        "missing": c.missing,
        "non_finite": c.non_finite,
        "distinct": c.distinct,
    }
    if c.reason:
        out["reason"] = c.reason
    if c.numeric is not None:
        n = c.numeric
        out["numeric"] = {
            "min": n.min,
            "max": n.max,
            "mean": n.mean,
            "std": n.std,
            "quantiles": list(n.quantiles),
            "histogram": list(n.histogram),
        }
    if c.kind == CATEGORICAL:
        out["categories"] = {
            "values": list(c.category_values),
            "counts": list(c.category_counts),
            "other": c.other,
            "capped": c.capped,
        }
    return out


def check_settings(bins: int, quantiles: int, max_categories: int) -> None:
    """Raise ``InvalidInput`` unless the sketch settings are integers in their bounds."""
    for name, value, low, high in (
        ("bins", bins, 1, MAX_BINS),
        ("quantiles", quantiles, 2, MAX_QUANTILES),
        ("max_categories", max_categories, 1, 10_000_000),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"{name} must be an integer from {low:,} to {high:,}, not {value!r}")


def bin_edges(low: float, high: float, bins: int) -> np.ndarray:
    """Return the ``bins + 1`` equal-width edges from ``low`` to ``high`` (exact ends)."""
    import numpy as np

    t = np.arange(bins + 1, dtype=np.float64) / bins
    # low·(1 − t) + high·t, not low + (high − low)·t: high − low overflows near ±1.8e308.
    edges = low * (1.0 - t) + high * t
    edges[0], edges[-1] = low, high
    return edges


def bin_counts(values: np.ndarray, low: float, high: float, bins: int) -> np.ndarray:
    """Return counts of sorted ``values`` in: below ``low``, ``bins`` equal bins, above ``high``.

    Bins are [e_k, e_k+1) with the last one closed at ``high``. ``values`` is sorted, so
    the counts are differences of binary-search positions: O(bins · log n), not O(n).
    """
    import numpy as np

    edges = bin_edges(low, high, bins)
    positions = np.searchsorted(values, edges[:-1], side="left")
    end = np.searchsorted(values, high, side="right")
    counts = np.empty(bins + 2, dtype=np.int64)
    counts[0] = positions[0]
    counts[1:bins] = np.diff(positions)
    counts[bins] = end - positions[-1]
    counts[bins + 1] = len(values) - end
    return counts


def _sketch(values: np.ndarray, bins: int, quantiles: int) -> NumericSketch:
    import numpy as np

    from keel.monitoring.stats import population_std, quantiles_of_sorted

    low, high = float(values[0]), float(values[-1])
    qs = quantiles_of_sorted(values, np.linspace(0.0, 1.0, quantiles))
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(np.mean(values))
        std = population_std(values, mean)
    if not (math.isfinite(mean) and math.isfinite(std)):  # finite values whose sum overflows
        scale = max(abs(low), abs(high))
        mean = float(np.mean(values / scale)) * scale
        std = float(np.std(values / scale)) * scale
        std = std if math.isfinite(std) else float(np.finfo(np.float64).max)
    return NumericSketch(
        min=low,
        max=high,
        mean=mean,
        std=std,
        quantiles=tuple(float(q) for q in qs),
        histogram=tuple(int(c) for c in bin_counts(values, low, high, bins)),
    )


def _distinct_sorted(values: np.ndarray) -> int:
    """How many distinct values a sorted array holds, counted block by block.

    The changes are compared in blocks into one small scratch array: a mask the length of
    the column would be held beside both sides' sorted copies, at the column's peak.
    """
    import numpy as np

    from keel.monitoring.stats import BLOCK

    if len(values) == 0:
        return 0
    pairs = len(values) - 1
    changes = 0
    scratch = np.empty(min(pairs, BLOCK), dtype=bool)
    for start in range(0, pairs, BLOCK):
        part = scratch[: min(BLOCK, pairs - start)]
        np.not_equal(
            values[start + 1 : start + 1 + len(part)], values[start : start + len(part)], out=part
        )
        changes += int(np.count_nonzero(part))
    return changes + 1


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and how often each occurs."""
    import numpy as np

    if len(values) == 0:
        return values, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return values[starts], np.diff(np.r_[starts, len(values)])


@dataclass(frozen=True)
class ProfiledColumn:
    """A column's profile with the raw values it came from (sorted numbers, category counts)."""

    profile: ColumnProfile
    numbers: NumericValues | None = None
    cats: Categories | None = None


def profile_column(
    name: str,
    series: pd.Series,
    *,
    bins: int,
    quantiles: int,
    max_categories: int | None,
) -> ProfiledColumn:
    """Profile one column; ``max_categories=None`` keeps every category (the raw path)."""
    import numpy as np
    import pandas as pd

    fam, reason, counted = classify(series)
    dtype = str(series.dtype)
    if fam is None:
        missing = int(series.isna().sum())
        column = ColumnProfile(name, dtype, None, UNSUPPORTED, 0, missing, reason=reason)
        return ProfiledColumn(column)
    if fam == NUMBER:
        numbers = numeric_values(series)
        values = numbers.sorted
        # Counting changes of a sorted array is one pass; the runs themselves are only
        # needed for the few columns compared as categories.
        n_distinct = _distinct_sorted(values)
        base = {
            "name": name,
            "dtype": dtype,
            "family": fam,
            "count": len(values),
            "missing": numbers.missing,
            "non_finite": numbers.non_finite,
            "distinct": n_distinct,
        }
        if len(values) == 0:
            return ProfiledColumn(
                ColumnProfile(**base, kind=UNSUPPORTED, reason="no finite values"), numbers
            )
        sketch = _sketch(values, bins, quantiles)
        if n_distinct > CATEGORICAL_MAX_DISTINCT:
            return ProfiledColumn(ColumnProfile(**base, kind=NUMERIC, numeric=sketch), numbers)
        distinct, counts = _runs(values)
        cats = Categories(pd.Index(distinct), counts.astype(np.int64), numbers.missing)
        column = ColumnProfile(
            **base,
            kind=CATEGORICAL,
            numeric=sketch,
            category_values=tuple(float(v) for v in distinct),
            category_counts=tuple(int(c) for c in counts),
        )
        return ProfiledColumn(column, numbers, cats)
    cats = counted if counted is not None else categories(series, fam)
    total = int(cats.counts.sum())
    if total == 0:
        column = ColumnProfile(
            name, dtype, fam, UNSUPPORTED, 0, cats.missing, reason="no non-missing values"
        )
        return ProfiledColumn(column, cats=cats)
    order = np.argsort(-cats.counts, kind="stable")  # most frequent first
    keep = order if max_categories is None else order[:max_categories]
    values = cats.values[keep]
    kept_counts = cats.counts[keep]
    to_python = bool if fam == BOOL else str if fam == STRING else float
    column = ColumnProfile(
        name=name,
        dtype=dtype,
        family=fam,
        kind=CATEGORICAL,
        count=total,
        missing=cats.missing,
        distinct=len(cats.values),
        category_values=tuple(to_python(v) for v in values),
        category_counts=tuple(int(c) for c in kept_counts),
        other=total - int(kept_counts.sum()),
        capped=len(keep) < len(cats.values),
    )
    return ProfiledColumn(column, cats=cats)


def profile(
    data: Any,
    *,
    columns: list[str] | None = None,
    bins: int = 30,
    quantiles: int = 201,
    max_categories: int = 1000,
) -> ReferenceProfile:
    """Return the reference profile of a DataFrame, Arrow table or Parquet file.

    ``columns`` limits it to those columns (each must exist). ``bins`` (1–10,000) and
    ``quantiles`` (2–100,001) size the numeric sketch; ``max_categories`` caps the
    categories kept per column. An empty frame is an ``InvalidInput``.
    """
    check_settings(bins, quantiles, max_categories)
    frame = load_frame(data, role="reference")
    names = select_columns(frame, columns, role="reference")
    profiled = {
        name: profile_column(
            name, frame[name], bins=bins, quantiles=quantiles, max_categories=max_categories
        ).profile
        for name in names
    }
    return ReferenceProfile(
        rows=len(frame),
        bins=bins,
        quantiles=quantiles,
        max_categories=max_categories,
        columns=profiled,
    )


def select_columns(frame: pd.DataFrame, columns: list[str] | None, *, role: str) -> list[str]:
    """Return the requested column names, checked against ``frame`` (all when None)."""
    if columns is None:
        return list(frame.columns)
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise InvalidInput("columns must be a list of column names")
    if not columns:
        raise InvalidInput("columns is empty: name at least one column, or pass None for all")
    if len(set(columns)) != len(columns):
        raise InvalidInput("columns repeats a name")
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise InvalidInput(f"the {role} data has no column {', '.join(map(repr, absent[:10]))}")
    return list(columns)
