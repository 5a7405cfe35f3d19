"""Reading a stored profile back: every field checked, so a bad file fails here, clearly."""

from __future__ import annotations

import itertools
import math
from typing import Any

from keel.errors import InvalidInput
from keel.monitoring._profile import (
    CATEGORICAL,
    FORMAT,
    NUMERIC,
    UNSUPPORTED,
    ColumnProfile,
    NumericSketch,
    ReferenceProfile,
    check_settings,
)

__all__ = ["read_profile"]

_FAMILIES = {"number", "string", "bool", None}
_KINDS = {NUMERIC, CATEGORICAL, UNSUPPORTED}
_SCALARS = {"number": (int, float), "string": (str,), "bool": (bool,)}


def _bad(where: str, what: str) -> InvalidInput:
    return InvalidInput(f"the profile's {where} {what}")


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(where, "must be an object")
    return value


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(where, f"must be a non-negative integer, not {value!r}")
    return value


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(where, f"must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise _bad(where, f"must be finite, not {value!r}")
    return number


def _counts(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _bad(where, "must be a list")
    return tuple(_count(v, f"{where}[{i}]") for i, v in enumerate(value))


def _sketch(data: Any, where: str, bins: int, quantiles: int, count: int) -> NumericSketch:
    data = _mapping(data, where)
    qs = data.get("quantiles")
    if not isinstance(qs, list) or len(qs) != quantiles:
        raise _bad(f"{where}.quantiles", f"must be a list of {quantiles} numbers")
    values = tuple(_float(v, f"{where}.quantiles[{i}]") for i, v in enumerate(qs))
    if any(b < a for a, b in itertools.pairwise(values)):
        raise _bad(f"{where}.quantiles", "must not decrease")
    histogram = _counts(data.get("histogram"), f"{where}.histogram")
    if len(histogram) != bins + 2:
        raise _bad(f"{where}.histogram", f"must have {bins + 2} counts (bins + 2)")
    if sum(histogram) != count:
        raise _bad(f"{where}.histogram", f"must add up to the column's count {count}")
    low, high = _float(data.get("min"), f"{where}.min"), _float(data.get("max"), f"{where}.max")
    if low > high or values[0] != low or values[-1] != high:
        raise _bad(where, "has min/max that disagree with its quantiles")
    std = _float(data.get("std"), f"{where}.std")
    if std < 0:
        raise _bad(f"{where}.std", "must not be negative")
    return NumericSketch(
        min=low,
        max=high,
        mean=_float(data.get("mean"), f"{where}.mean"),
        std=std,
        quantiles=values,
        histogram=histogram,
    )


def _column(name: str, data: Any, bins: int, quantiles: int) -> ColumnProfile:
    where = f"column {name!r}"
    data = _mapping(data, where)
    fam, kind = data.get("family"), data.get("kind")
    if fam not in _FAMILIES:
        raise _bad(f"{where} family", f"must be number, string, bool or null, not {fam!r}")
    if kind not in _KINDS:
        raise _bad(f"{where} kind", f"must be one of {sorted(_KINDS)}, not {kind!r}")
    dtype = data.get("dtype")
    if not isinstance(dtype, str):
        raise _bad(f"{where} dtype", "must be a string")
    count = _count(data.get("count"), f"{where} count")
    numeric = None
    if data.get("numeric") is not None:
        if fam != "number":
            raise _bad(where, "has a numeric sketch but is not a number column")
        numeric = _sketch(data["numeric"], f"{where} numeric", bins, quantiles, count)
    if kind != UNSUPPORTED and fam is None:
        raise _bad(where, "has no family but a statistic kind")
    if kind == NUMERIC and numeric is None:
        raise _bad(where, "is numeric but has no numeric sketch")
    values: tuple[Any, ...] = ()
    counts: tuple[int, ...] = ()
    other, capped = 0, False
    if kind == CATEGORICAL:
        cats = _mapping(data.get("categories"), f"{where} categories")
        raw = cats.get("values")
        if not isinstance(raw, list):
            raise _bad(f"{where} categories.values", "must be a list")
        allowed = _SCALARS[fam]
        for i, v in enumerate(raw):
            if not isinstance(v, allowed) or (fam == "number" and isinstance(v, bool)):
                raise _bad(f"{where} categories.values[{i}]", f"must be a {fam}, not {v!r}")
        values = tuple(float(v) for v in raw) if fam == "number" else tuple(raw)
        if len(set(values)) != len(values):
            raise _bad(f"{where} categories.values", "repeats a value")
        counts = _counts(cats.get("counts"), f"{where} categories.counts")
        if len(counts) != len(values) or not values:
            raise _bad(f"{where} categories", "needs one count per value, at least one value")
        other = _count(cats.get("other", 0), f"{where} categories.other")
        capped = cats.get("capped", False)
        if not isinstance(capped, bool):
            raise _bad(f"{where} categories.capped", "must be true or false")
        if sum(counts) + other != count:
            raise _bad(f"{where} categories", f"must add up to the column's count {count}")
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise _bad(f"{where} reason", "must be a string")
    return ColumnProfile(
        name=name,
        dtype=dtype,
        family=fam,
        kind=kind,
        count=count,
        missing=_count(data.get("missing"), f"{where} missing"),
        non_finite=_count(data.get("non_finite", 0), f"{where} non_finite"),
        distinct=_count(data.get("distinct", 0), f"{where} distinct"),
        reason=reason,
        numeric=numeric,
        category_values=values,
        category_counts=counts,
        other=other,
        capped=capped,
    )


def read_profile(data: Any) -> ReferenceProfile:
    """Return the ``ReferenceProfile`` in ``data`` (``to_dict`` output), fully checked."""
    data = _mapping(data, "top level")
    if data.get("format") != FORMAT:
        raise InvalidInput(f"not a Keel reference profile (format must be {FORMAT!r})")
    bins, quantiles = data.get("bins"), data.get("quantiles")
    max_categories = data.get("max_categories")
    check_settings(bins, quantiles, max_categories)  # type: ignore[arg-type]
    rows = _count(data.get("rows"), "rows")
    if rows == 0:
        raise _bad("rows", "must be at least 1")
    columns = _mapping(data.get("columns"), "columns")
    if not columns:
        raise _bad("columns", "must name at least one column")
    parsed = {str(name): _column(str(name), c, bins, quantiles) for name, c in columns.items()}
    return ReferenceProfile(
        rows=rows,
        bins=bins,
        quantiles=quantiles,
        max_categories=max_categories,
        columns=parsed,
    )
