"""Tabular input for monitoring: a checked pandas DataFrame, and each column's values.

Accepted inputs are a pandas DataFrame, a pyarrow Table or RecordBatch, or the path of a
Parquet file (or folder of Parquet files). A column is classified by its dtype:

* ``number``: integer and float dtypes (nullable ones too), and object columns holding
  only numbers;
* ``string``: str/object columns holding only strings, and ``category`` columns;
* ``bool``: boolean columns (object columns holding only True/False too);
* anything else (datetimes, timedeltas, complex, intervals, an object column that mixes
  strings and numbers, or one with nothing but missing values) is *unsupported* and
  analysed by no statistic: the caller gets the reason instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "Categories",
    "NumericValues",
    "categories",
    "classify",
    "family",
    "load_frame",
    "numeric_values",
]

NUMBER, STRING, BOOL = "number", "string", "bool"
_PROBE_ROWS = 8192  # rows whose distinct count picks how a column is counted
_DICT_ROWS = 250_000  # object columns shorter than this are counted in a dict
_OBJECT_KINDS = {
    "string": STRING,
    "categorical": STRING,
    "boolean": BOOL,
    "integer": NUMBER,
    "floating": NUMBER,
    "mixed-integer-float": NUMBER,
    "decimal": NUMBER,
}


def load_frame(data: Any, *, role: str) -> pd.DataFrame:
    """Return ``data`` as a non-empty DataFrame with unique string column names."""
    import pandas as pd

    if isinstance(data, str | os.PathLike):
        frame = _read_parquet(Path(data), role)
    elif isinstance(data, pd.DataFrame):
        frame = data
    elif type(data).__module__.startswith("pyarrow") and hasattr(data, "to_pandas"):
        frame = data.to_pandas()
    else:
        raise InvalidInput(
            f"the {role} data is a {type(data).__name__}; pass a pandas DataFrame, a pyarrow "
            "Table or the path of a Parquet file"
        )
    if frame.shape[1] == 0:
        raise InvalidInput(f"the {role} data has no columns")
    if frame.shape[0] == 0:
        raise InvalidInput(f"the {role} data has no rows: drift needs at least one row")
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        raise InvalidInput(f"the {role} data repeats column names: {', '.join(dupes[:10])}")
    if names != list(frame.columns):
        frame = frame.set_axis(names, axis=1)
    return frame


def _read_parquet(path: Path, role: str) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    if not path.exists():
        raise InvalidInput(f"the {role} file {str(path)!r} does not exist")
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise InvalidInput(
            f"the {role} file {str(path)!r} is not readable Parquet: {detail}"
        ) from exc


def family(series: pd.Series) -> tuple[str | None, str]:
    """Return ``(family, reason)``: ``number``/``string``/``bool``, or None and why not."""
    fam, reason, _ = classify(series)
    return fam, reason


def classify(series: pd.Series) -> tuple[str | None, str, Categories | None]:
    """Return the family, the reason when None, and for str/object columns their categories.

    An object column is counted once and its type read from the distinct values only
    (a per-value type scan of a million strings costs as much as half the hashing), so
    the categories come with the answer instead of a second pass.
    """
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return STRING, "", None
    if types.is_bool_dtype(dtype):
        return BOOL, "", None
    if types.is_complex_dtype(dtype):
        return None, f"unsupported dtype {dtype}", None
    if types.is_numeric_dtype(dtype):
        return NUMBER, "", None
    if types.is_string_dtype(dtype) or types.is_object_dtype(dtype):
        counts = _value_counts(series)
        inferred = types.infer_dtype(counts.index, skipna=True)
        if inferred == "empty":
            return None, "no non-missing values", None
        kind = _OBJECT_KINDS.get(inferred)
        if kind is None:
            return (
                None,
                f"values of mixed or unsupported types ({inferred}); cast to one type",
                None,
            )
        if kind == NUMBER:
            return NUMBER, "", None
        return kind, "", _from_counts(counts, len(series), kind)
    return None, f"unsupported dtype {dtype}", None


@dataclass(frozen=True)
class NumericValues:
    """A numeric column's finite values, sorted, and how many were missing or ±inf."""

    sorted: np.ndarray
    missing: int
    non_finite: int


def numeric_values(series: pd.Series) -> NumericValues:
    """Return the column's finite float64 values sorted; NaN/None are missing, ±inf counted.

    The values are copied once (or not at all when the float64 conversion already made a
    private array) and sorted in place; numpy sorts -inf first and +inf then NaN last, so
    the finite values are a slice found by binary search, with no mask and no second copy.
    """
    import numpy as np
    import pandas as pd

    if series.dtype == object:
        series = pd.to_numeric(series, errors="coerce")
    if series.dtype == np.float64:
        values = series.to_numpy()  # a view: NaN is already NaN (na_value= would copy)
        ordered = values.copy()
    else:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        # A converted array is this call's own unless it views the column's buffer (a
        # pyarrow-backed column can convert without copying): only the former is sorted
        # where it is.
        private = values.flags.owndata and values.flags.writeable
        ordered = values if private else values.copy()
    ordered.sort()  # numpy's SIMD sort: one sort serves quantiles, ranks and distances
    low = int(np.searchsorted(ordered, -np.inf, side="right"))
    high = int(np.searchsorted(ordered, np.inf, side="left"))
    end = int(np.searchsorted(ordered, np.inf, side="right"))
    return NumericValues(
        sorted=ordered[low:high], missing=len(ordered) - end, non_finite=low + end - high
    )


@dataclass(frozen=True)
class Categories:
    """A column's distinct non-missing values and their counts (same order)."""

    values: pd.Index
    counts: np.ndarray
    missing: int


def categories(series: pd.Series, fam: str) -> Categories:
    """Return the distinct values of a string/bool column with their counts (hash-based)."""
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        return _counted(series.cat.codes.to_numpy(), series.cat.categories, fam)
    _, _, counted = classify(series)
    if counted is not None:
        return counted
    return _from_counts(_value_counts(series), len(series), fam)


def _value_counts(series: pd.Series) -> pd.Series:
    """The non-missing distinct values' counts, in order of first appearance.

    Counted rather than factorized when the values repeat: factorize sizes its hash table
    for every row and returns a code per row (~48 bytes a row in all), a count grows its
    table with the distinct values, which a categorical column has few of. Where most
    values are distinct (ids) the growing table rehashes over and over (~1.8x the CPU of
    factorize), so a head of mostly distinct values takes factorize's path.
    """
    import numpy as np
    import pandas as pd

    if len(series) > _PROBE_ROWS:
        head = series.iloc[:_PROBE_ROWS]
        if 2 * len(_counted_values(head)) > len(head):
            codes, uniques = pd.factorize(series, use_na_sentinel=True)
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            return pd.Series(counts, index=uniques, copy=False)
    return _counted_values(series)


def _counted_values(series: pd.Series) -> pd.Series:
    """``series.value_counts(sort=False, dropna=True)``; a small object column's by a dict.

    Python's own counter (hash and equality of the objects, as pandas' object table) spares
    mapping pandas' hashing code (~0.3 MB of RSS, the library's pages) for ~1.2x its time
    (3.1 ms instead of 2.7 ms at 100,000 strings): worth it below ``_DICT_ROWS`` rows,
    where that third of a MB is a share of what drift adds that the time is not.
    """
    import collections

    import numpy as np
    import pandas as pd

    if series.dtype != object or len(series) >= _DICT_ROWS:
        return series.value_counts(sort=False, dropna=True)
    counted = collections.Counter(series.to_numpy())
    values = np.fromiter(counted, dtype=object, count=len(counted))
    counts = np.fromiter(counted.values(), dtype=np.int64, count=len(counted))
    keep = ~pd.isna(values)
    return pd.Series(counts[keep], index=pd.Index(values[keep], dtype=object), copy=False)


def _from_counts(counts: pd.Series, rows: int, fam: str) -> Categories:
    import numpy as np
    import pandas as pd

    totals = counts.to_numpy(dtype=np.int64)
    values = pd.Index(np.asarray(counts.index, dtype=object), dtype=object)
    if fam == BOOL:
        values = pd.Index([bool(v) for v in values], dtype=object)
    return Categories(values, totals, rows - int(totals.sum()))


def _counted(codes: np.ndarray, uniques: Any, fam: str) -> Categories:
    import numpy as np
    import pandas as pd

    missing = int(np.count_nonzero(codes < 0))
    kept = codes[codes >= 0] if missing else codes  # no copy when nothing is missing
    counts = np.bincount(kept, minlength=len(uniques)).astype(np.int64)
    keep = counts > 0
    values = pd.Index(np.asarray(uniques, dtype=object)[keep], dtype=object)
    if fam == BOOL:
        values = pd.Index([bool(v) for v in values], dtype=object)
    return Categories(values, counts[keep], missing)
