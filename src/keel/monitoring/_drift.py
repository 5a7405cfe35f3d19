"""Data drift: compare a current dataset with a reference, column by column.

``drift(reference, current)`` takes DataFrames, Arrow tables or Parquet paths (the
reference may also be a ``ReferenceProfile``) and returns a ``DriftReport``.

The method of a column, unless ``methods`` names one, follows Evidently's documented
defaults (p-values on small samples, distances on large ones, where every p-value is
tiny), decided by the reference's count of usable values ``n``:

==============================  ==========================  ============================
column                          n <= 1,000                  n > 1,000
==============================  ==========================  ============================
numeric (> 5 distinct values)   ``ks``, drift if p < 0.05   ``wasserstein`` (normed),
                                                            drift if >= 0.1
categorical (strings, bools,    ``chisquare``, drift if     ``jensenshannon``, drift if
numbers with <= 5 values)       p < 0.05                    >= 0.1
==============================  ==========================  ============================

``psi`` (drift if >= 0.1) is available by name. ``ks`` and ``wasserstein`` need numbers;
``chisquare``, ``jensenshannon`` and ``psi`` compare category counts, or, for a numeric
column, counts in the reference's fixed bins (see ``keel.monitoring._profile``).
Thresholds per method can be changed with ``thresholds``; the dataset drifted when the
share of drifted feature columns is at least ``drift_share`` (0.5).

Defined results for awkward input (each tested):

* NaN/None are missing and ±inf are non-finite: both are left out of every statistic
  (``keel.monitoring._quality`` counts them).
* A column with no usable value on either side, of an unsupported dtype (datetimes,
  mixed strings and numbers…), or whose type differs between the sides (number in the
  reference, string now) is *skipped*: ``report.skipped`` says why; it is not counted.
* With ``columns=None`` the columns both sides have are compared; the others are listed
  in ``missing_columns``/``extra_columns``. A named column absent on a side is an error.
* Finite values so large (near ±1.8e308) that a distance overflows give an infinite
  statistic (drift; JSON null), or, where the arithmetic is undefined, a skipped column.
* A constant reference column has one distinct value, so it is categorical: any new
  value in the current data shows as drift.
* ``InvalidInput`` for: empty frames (no rows or no columns), repeated column names, no
  column in common, no column that can be compared, unknown method names, a method that
  needs numbers on a string column, thresholds that are not finite numbers in range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring import stats
from keel.monitoring._buckets import category_vectors, distribution, numeric_vectors, runs
from keel.monitoring._current import CurrentColumn, current_column
from keel.monitoring._frames import NUMBER, load_frame
from keel.monitoring._paired import paired_column
from keel.monitoring._profile import (
    CATEGORICAL,
    NUMERIC,
    UNSUPPORTED,
    ColumnProfile,
    ProfiledColumn,
    ReferenceProfile,
    check_settings,
    profile_column,
)
from keel.monitoring.results import P_VALUE_METHODS, ColumnDrift, DriftReport

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_THRESHOLDS", "METHODS", "SMALL_SAMPLE", "choose_method", "drift"]

METHODS = ("chisquare", "jensenshannon", "ks", "psi", "wasserstein")
DEFAULT_THRESHOLDS = {
    "ks": 0.05,
    "chisquare": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
SMALL_SAMPLE = 1000
_NUMBERS_ONLY = {"ks", "wasserstein"}


def choose_method(kind: str, n_reference: int) -> str:
    """Return the default method for a column kind and reference size (the table above)."""
    small = n_reference <= SMALL_SAMPLE
    if kind == NUMERIC:
        return "ks" if small else "wasserstein"
    return "chisquare" if small else "jensenshannon"


def _check_options(
    methods: Mapping[str, str] | None,
    thresholds: Mapping[str, float] | None,
    drift_share: float,
) -> dict[str, float]:
    if methods is not None:
        if not isinstance(methods, Mapping):
            raise InvalidInput("methods must map column names to method names")
        for column, method in methods.items():
            if method not in METHODS:
                raise InvalidInput(
                    f"unknown drift method {method!r} for column {column!r}; "
                    f"choose one of {', '.join(METHODS)}"
                )
    limits = dict(DEFAULT_THRESHOLDS)
    for method, given in (thresholds or {}).items():
        if method not in METHODS:
            raise InvalidInput(
                f"thresholds names unknown method {method!r}; choose from {', '.join(METHODS)}"
            )
        if isinstance(given, bool) or not isinstance(given, int | float):
            raise InvalidInput(f"the {method} threshold must be a number, not {given!r}")
        value = float(given)
        high = 1.0 if method in P_VALUE_METHODS else math.inf
        if not (math.isfinite(value) and 0.0 < value <= high):
            bound = "in (0, 1]" if high == 1.0 else "a finite number above 0"
            raise InvalidInput(f"the {method} threshold must be {bound}, not {value!r}")
        limits[method] = value
    if isinstance(drift_share, bool) or not isinstance(drift_share, int | float):
        raise InvalidInput(f"drift_share must be a number in (0, 1], not {drift_share!r}")
    if not 0.0 < float(drift_share) <= 1.0:
        raise InvalidInput(f"drift_share must be in (0, 1], not {drift_share!r}")
    return limits


@dataclass(frozen=True)
class _Reference:
    """The reference side: raw frame (exact statistics) or a stored profile."""

    frame: pd.DataFrame | None
    profile: ReferenceProfile | None
    rows: int
    bins: int

    @property
    def names(self) -> list[str]:
        if self.frame is not None:
            return list(self.frame.columns)
        return list(self.profile.columns) if self.profile is not None else []

    def column(self, name: str, quantiles: int) -> ProfiledColumn:
        if self.frame is not None:
            return profile_column(
                name, self.frame[name], bins=self.bins, quantiles=quantiles, max_categories=None
            )
        if self.profile is None:
            raise InvalidInput("no reference data")  # unreachable: _reference sets one
        return ProfiledColumn(self.profile.columns[name])


def _reference(data: Any, bins: int | None, quantiles: int) -> _Reference:
    if isinstance(data, ReferenceProfile):
        if bins is not None and bins != data.bins:
            raise InvalidInput(
                f"the reference profile was built with {data.bins} bins; bins={bins} needs "
                "the raw reference data (or a profile built with that many bins)"
            )
        return _Reference(None, data, data.rows, data.bins)
    bins = 30 if bins is None else bins
    check_settings(bins, quantiles, 1)
    frame = load_frame(data, role="reference")
    return _Reference(frame, None, len(frame), bins)


def _compare(
    name: str,
    ref: ProfiledColumn,
    current: CurrentColumn,
    method: str | None,
    limits: dict[str, float],
    bins: int,
) -> ColumnDrift | str:
    """Return the column's result, or the reason it cannot be compared."""
    p: ColumnProfile = ref.profile
    if p.kind == UNSUPPORTED:
        return f"reference: {p.reason}"
    cur_family = current.family
    if cur_family is None:
        return f"current: {current.reason}"
    if cur_family != p.family:
        return f"type changed: {p.family} in the reference, {cur_family} in the current data"
    chosen = method or choose_method(p.kind, p.count)
    if chosen in _NUMBERS_ONLY and p.family != NUMBER:
        raise InvalidInput(f"{chosen} needs a numeric column; {name!r} holds {p.family} values")
    numbers, cats, sums = current.numbers, current.cats, current.sums
    approximate = False
    if sums is not None:
        n_current = sums.count
    else:
        n_current = len(numbers.sorted) if numbers is not None else int(cats.counts.sum())
    if n_current == 0:
        return "current: no usable (non-missing, finite) values"
    p_value: float | None = None
    if p.kind == CATEGORICAL:
        if numbers is not None:
            values, counts = runs(numbers.sorted)
        else:
            values, counts = cats.values, cats.counts
        labels, ref_vec, cur_vec = category_vectors(ref, values, counts)
    elif sums is not None:
        labels, ref_vec, cur_vec = numeric_vectors(p.numeric, None, bins, sums.bins)
    else:
        labels, ref_vec, cur_vec = numeric_vectors(p.numeric, numbers.sorted, bins)
    if chosen in _NUMBERS_ONLY:
        exact = ref.numbers is not None or sums is not None
        q = p.numeric.quantiles
        if chosen == "ks" and exact:
            statistic, p_value = stats.ks(ref.numbers.sorted, numbers.sorted)
        elif chosen == "ks":
            statistic, p_value = stats.ks_from_quantiles(q, p.count, numbers.sorted)
        elif sums is not None:
            statistic = stats.normed(sums.distance, p.numeric.std)
        elif exact:
            # The current values' last use (their bins are counted above): the distance
            # may write over them instead of allocating another column's worth.
            statistic = stats.wasserstein_normed(
                ref.numbers.sorted, numbers.sorted, p.numeric.std, overwrite_cur=True
            )
        else:
            statistic = stats.wasserstein_from_quantiles(q, p.numeric.std, numbers.sorted)
        approximate = not exact
    elif chosen == "chisquare":
        statistic, p_value = stats.chi_square(ref_vec, cur_vec)
    elif chosen == "jensenshannon":
        statistic = stats.jensen_shannon(ref_vec, cur_vec)
    else:
        statistic = stats.psi(ref_vec, cur_vec)
    if math.isnan(statistic) or (p_value is not None and math.isnan(p_value)):
        return "statistic undefined: the values overflow float64 arithmetic"
    threshold = limits[chosen]
    drifted = p_value < threshold if p_value is not None else statistic >= threshold
    return ColumnDrift(
        column=name,
        kind=p.kind,
        method=chosen,
        statistic=float(statistic),
        p_value=p_value,
        threshold=threshold,
        drifted=bool(drifted),
        n_reference=p.count,
        n_current=n_current,
        approximate=approximate,
        distribution=distribution(labels, ref_vec, cur_vec, numeric=p.kind == NUMERIC),
    )


def drift(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    drift_share: float = 0.5,
    prediction: str | None = None,
    target: str | None = None,
    multivariate: bool = False,
    bins: int | None = None,
    quantiles: int = 201,
    seed: int = 0,
) -> DriftReport:
    """Return the ``DriftReport`` of ``current`` against ``reference`` (see the module doc).

    ``methods`` maps column names to a method; ``thresholds`` maps method names to their
    threshold. ``prediction`` and ``target`` name columns reported apart as prediction
    drift and target drift. ``multivariate=True`` adds a domain classifier's ROC AUC
    (raw reference only). ``bins`` (default 30) sizes the numeric bins of the binned
    methods; a profile keeps the bins it was built with.
    """
    limits = _check_options(methods, thresholds, drift_share)
    ref = _reference(reference, bins, quantiles)
    cur = load_frame(current, role="current")
    special = [c for c in (prediction, target) if c is not None]
    for name in special:
        if not isinstance(name, str):
            raise InvalidInput("prediction and target must be column names")
        for side, names in (("reference", ref.names), ("current", list(cur.columns))):
            if name not in names:
                raise InvalidInput(f"the {side} data has no column {name!r}")
    ref_names, cur_names = ref.names, set(cur.columns)
    if columns is None:
        chosen = [c for c in ref_names if c in cur_names and c not in special]
        if not chosen and not special:
            raise InvalidInput(
                "the reference and current data have no column in common "
                f"(reference: {', '.join(ref_names[:5])}; current: {', '.join(list(cur)[:5])})"
            )
    else:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise InvalidInput("columns must be a list of column names")
        if not columns:
            raise InvalidInput("columns is empty: name at least one column, or pass None")
        for side, names in (("reference", set(ref_names)), ("current", cur_names)):
            absent = [c for c in columns if c not in names]
            if absent:
                raise InvalidInput(
                    f"the {side} data has no column {', '.join(map(repr, absent[:10]))}"
                )
        chosen = [c for c in dict.fromkeys(columns) if c not in special]
    unknown = sorted(set(methods or {}) - set(chosen) - set(special))
    if unknown:
        raise InvalidInput(f"methods names columns not compared: {', '.join(unknown[:10])}")

    import numpy as np

    from keel.monitoring import _parallel

    # Finite values near ±1.8e308 may overflow a distance to inf: a defined result (JSON
    # null), not a warning. numpy's error state is per thread, so each side sets it.
    def reference_side(name: str) -> ProfiledColumn:
        with np.errstate(over="ignore", invalid="ignore"):
            return ref.column(name, quantiles)

    def current_side(name: str) -> CurrentColumn:
        with np.errstate(over="ignore", invalid="ignore"):
            return current_column(cur[name])

    def compare(
        name: str, reference_column: ProfiledColumn, current: CurrentColumn
    ) -> ColumnDrift | str:
        with np.errstate(over="ignore", invalid="ignore"):
            method = (methods or {}).get(name)
            return _compare(name, reference_column, current, method, limits, ref.bins)

    def one_column(name: str) -> ColumnDrift | str:  # on one thread: both sides in blocks
        with np.errstate(over="ignore", invalid="ignore"):
            method = (methods or {}).get(name)
            paired = paired_column(
                name,
                ref.frame[name],
                cur[name],
                bins=ref.bins,
                quantiles=quantiles,
                choose=lambda kind, count: method or choose_method(kind, count),
            )
            if paired is not None:
                reference_column, current = paired
            else:  # the reference first, then the current beside its sorted copy
                reference_column = ref.column(name, quantiles)
                p = reference_column.profile
                picked = method or choose_method(p.kind, p.count)
                current = current_column(cur[name], reference_column, picked)
            return _compare(name, reference_column, current, method, limits, ref.bins)

    names = [*chosen, *special]
    threads = max(ref.rows, len(cur)) >= _parallel.SERIAL_ROWS
    if ref.frame is not None and not threads:
        outcomes = [one_column(name) for name in names]
    elif ref.frame is not None:
        outcomes = _parallel.map_column_sides(reference_side, current_side, compare, names)
    else:  # a profile's side is a lookup: only the current side has work to share out
        outcomes = _parallel.map_columns(
            lambda n: compare(n, reference_side(n), current_side(n)), names, threads=threads
        )
    results = [o for n, o in zip(chosen, outcomes, strict=False) if isinstance(o, ColumnDrift)]
    skipped = {
        n: o for n, o in zip([*chosen, *special], outcomes, strict=True) if isinstance(o, str)
    }
    extra = dict(zip(special, outcomes[len(chosen) :], strict=True))
    if chosen and not results:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:5])
        raise InvalidInput(f"no column can be compared ({reasons})")
    drifted = sum(r.drifted for r in results)
    share = drifted / len(results) if results else 0.0
    multi = None
    if multivariate:
        if ref.frame is None:
            raise InvalidInput("multivariate drift needs the raw reference data, not a profile")
        from keel.monitoring.multivariate import domain_classifier

        multi = domain_classifier(ref.frame, cur, [r.column for r in results], seed=seed)

    def special_result(name: str | None) -> ColumnDrift | None:
        outcome = extra.get(name) if name is not None else None
        return outcome if isinstance(outcome, ColumnDrift) else None

    return DriftReport(
        columns=tuple(results),
        drift_share=float(drift_share),
        drifted_columns=drifted,
        share=share,
        dataset_drifted=bool(results) and share >= drift_share,
        rows_reference=ref.rows,
        rows_current=len(cur),
        skipped=skipped,
        missing_columns=tuple(c for c in ref_names if c not in cur_names and c not in special),
        extra_columns=tuple(c for c in cur.columns if c not in set(ref_names)),
        prediction=special_result(prediction),
        target=special_result(target),
        multivariate=multi,
    )
