"""Schema enforcement: check data against a model's :class:`~keel.registry.signature.Schema`.

:func:`enforce_schema` (re-exported by ``keel.registry.signature``, whose docstring gives the
casting rules) checks and casts with vectorised pandas/numpy operations, raising
:class:`~keel.errors.SchemaError` naming the column, expected and found dtype. numpy and
pandas are imported only when data is touched.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.errors import SchemaError
from keel.registry.signature import _FLOATS, _INTS, ColumnSpec, Schema, _dtype_name

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["enforce_schema"]

_NUMPY_NAMES = frozenset((*_INTS, *_FLOATS, "bool"))
_PANDAS_DTYPES = {
    "string": "object",
    "binary": "object",
    "object": "object",
    "datetime": "datetime64[ns]",
    "timedelta": "timedelta64[ns]",
    "category": "category",
}


def enforce_schema(data: Any, schema: Schema) -> pd.DataFrame | np.ndarray:
    """Return ``data`` checked against ``schema`` and cast to it, or raise ``SchemaError``.

    A dataframe schema accepts a DataFrame (extra columns dropped, columns put in schema
    order), a dict of columns, a record or list of records, or a 2-D array/list of rows with
    exactly one value per column. A tensor schema accepts an array-like (or a DataFrame with
    the right number of columns). Zero rows are fine and come back empty.
    """
    if data is None:
        raise SchemaError(f"the input is None; the model expects {_expects(schema)}")
    if schema.kind == "tensor":
        return _enforce_tensor(data, schema.columns[0])
    return _enforce_frame(_as_frame(data, schema), schema)


def _expects(schema: Schema) -> str:
    if schema.kind == "tensor":
        spec = schema.columns[0]
        shape = "" if spec.shape is None else f" of shape {spec.shape}"
        return f"a {spec.dtype} array{shape}"
    return f"columns {list(schema.names)}"


class _Mismatch(Exception):
    """One column's problem; collected, then raised together as one SchemaError."""


def _as_frame(data: Any, schema: Schema) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    names = list(schema.names)
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        if data.name is None and len(names) != 1:
            raise SchemaError(f"an unnamed Series cannot fill {_expects(schema)}")
        frame = data.to_frame(names[0] if data.name is None else data.name)
    elif isinstance(data, Mapping):
        try:
            scalars = all(np.ndim(v) == 0 for v in data.values())
            frame = pd.DataFrame([dict(data)] if scalars and data else dict(data))
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"cannot read the dict as columns: {exc}") from None
    elif isinstance(data, list | tuple) and data and isinstance(data[0], Mapping):
        frame = pd.DataFrame(list(data))
    elif isinstance(data, np.ndarray | list | tuple):
        frame = _rows_frame(data, names)
    else:
        raise SchemaError(
            f"cannot read {type(data).__name__} as a table; pass a DataFrame, a dict of "
            "columns, a list of records or a 2-D array with one value per column"
        )
    labels = frame.columns.tolist()  # iterating an Index directly is slow (pandas 3 strings)
    if len(set(labels)) != len(labels):
        raise SchemaError(f"the input has duplicate columns: {labels}")
    if not all(isinstance(c, str) for c in labels):
        frame = frame.rename(columns=str)
    return frame


def _rows_frame(data: Any, names: list[str]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if len(data) == 0:
        return pd.DataFrame(columns=names)
    if isinstance(data, np.ndarray):
        if data.ndim == 1 and len(names) == 1:
            return pd.DataFrame({names[0]: data})
        width = data.shape[1] if data.ndim == 2 else None
    else:
        first = data[0]
        if np.ndim(first) == 0 and len(names) == 1:
            return pd.DataFrame({names[0]: list(data)})
        width = len(first) if isinstance(first, list | tuple | np.ndarray) else None
    if width != len(names):
        got = f"{width} columns" if width is not None else f"shape {np.shape(data)}"
        raise SchemaError(f"the input has {got}; the model expects {len(names)}: {names}")
    try:
        return pd.DataFrame(data if isinstance(data, np.ndarray) else list(data), columns=names)
    except ValueError as exc:
        raise SchemaError(f"cannot read the rows as {len(names)} columns: {exc}") from None


def _enforce_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    import pandas as pd

    names = list(schema.names)
    if len(frame) == 0:
        return pd.DataFrame(
            {
                c.name: pd.Series([], dtype=_PANDAS_DTYPES.get(c.dtype, c.dtype))
                for c in schema.columns
            }
        )
    labels = frame.columns.tolist()
    present = set(labels)
    missing = [c.name for c in schema.columns if c.name not in present and not c.optional]
    if missing:
        raise SchemaError(f"the input is missing column(s) {missing}; the model expects {names}")
    out: dict[str, pd.Series | None] = {}  # None: the input column as it is
    problems: list[str] = []
    dtypes = dict(zip(labels, frame.dtypes.tolist(), strict=True))
    for spec in schema.columns:
        name = str(spec.name)
        if name not in present:
            out[name] = _null_series(spec, frame.index)
            continue
        dtype = dtypes[name]
        if spec.dtype in _NUMPY_NAMES and dtype == _numpy_dtype(spec.dtype):
            out[name] = None  # the common case: a numpy column of the right dtype
            continue
        column = frame[name]
        try:
            coerced = _coerce_column(column, spec)
        except _Mismatch as exc:
            problems.append(f"column {name!r}: {exc}")
            continue
        out[name] = None if coerced is column else coerced
    if problems:
        raise SchemaError("the input does not match the model's signature: " + "; ".join(problems))
    if all(column is None for column in out.values()):
        return frame if labels == names else frame[names]
    columns = {n: frame[n] if column is None else column for n, column in out.items()}
    return pd.DataFrame(columns, index=frame.index)


def _coerce_column(column: pd.Series, spec: ColumnSpec) -> pd.Series:
    import numpy as np
    import pandas as pd

    target = spec.dtype
    if target == "object":
        return column
    found = _dtype_name(column)
    numpy_backed = isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf"
    if found == target and numpy_backed:
        return column
    if target in _INTS or target in _FLOATS:
        return _coerce_number(column, found, spec)
    nulls = column.isna()
    n_null = int(nulls.sum())
    if n_null and not spec.optional:
        raise _Mismatch(f"{n_null} null value(s), but the column is not optional")
    if n_null == len(column):
        return _null_series(spec, column.index)
    if target == "bool" and found == "bool":
        return column.astype("boolean" if n_null else bool)
    if target == "string" and found == "string":
        return column
    if (
        target == "string"
        and found == "category"
        and _dtype_name(column.cat.categories) == "string"
    ):
        return column.astype(object)
    if target == "datetime" and found in ("datetime", "string"):
        return _to_datetime(column, nulls)
    if target == "timedelta" and found == "timedelta":
        return pd.to_timedelta(column)
    if target == "category" and found != "object":
        return column.astype("category")
    if target == "binary" and found == "binary":
        return column
    raise _Mismatch(f"expected {target}, found {found}{_example(column, nulls)}")


def _coerce_number(column: pd.Series, found: str, spec: ColumnSpec) -> pd.Series:
    import pandas as pd

    target = spec.dtype
    if found not in _INTS and found not in _FLOATS:
        bad = column.notna()
        if found == "object":  # mixed: point at the first value that is not a number
            bad &= pd.to_numeric(column, errors="coerce").isna()
        raise _Mismatch(f"expected {target}, found {found}{_example(column, ~bad)}")
    if column.dtype == object:
        column = pd.to_numeric(column)
        found = _dtype_name(column)
    if target in _FLOATS:
        return column.astype(target)
    nulls = column.isna()
    n_null = int(nulls.sum())
    if n_null and not spec.optional:
        raise _Mismatch(
            f"expected {target}, found {n_null} null value(s) and the column is not optional"
        )
    kind = "f" if found in _FLOATS else "i"
    values = column.to_numpy(dtype="float64" if kind == "f" else found, na_value=0)
    problem = _int_problem(values[~nulls.to_numpy()] if n_null else values, target)
    if problem:
        raise _Mismatch(f"expected {target}, found {found} with {problem}")
    return column.astype(_nullable_int(target) if n_null else target)


def _int_problem(values: np.ndarray, target: str) -> str | None:
    """Return why ``values`` cannot become ``target`` integers losslessly, or None."""
    import numpy as np

    if values.size == 0 or np.can_cast(values.dtype, target):
        return None
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            return "NaN values"
        fractional = values != np.trunc(values)
        if fractional.any():
            return f"fractional values (e.g. {values[fractional][0]!r})"
    info = np.iinfo(target)
    low, high = values.min(), values.max()
    if low < info.min or high > info.max:
        return f"values out of range [{info.min}, {info.max}] (min {low}, max {high})"
    return None


def _to_datetime(column: pd.Series, nulls: pd.Series) -> pd.Series:
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column
    parsed = pd.to_datetime(column, errors="coerce", format="ISO8601")
    bad = parsed.isna() & ~nulls
    if bad.any():  # not ISO 8601: let pandas guess per value, for the failures only
        parsed[bad] = pd.to_datetime(column[bad], errors="coerce", format="mixed")
        bad = parsed.isna() & ~nulls
    if bad.any():
        raise _Mismatch(f"expected datetime, found unparseable strings{_example(column, ~bad)}")
    return parsed


def _example(column: pd.Series, good: pd.Series) -> str:
    bad = column[~good.to_numpy()]
    return f" (e.g. {bad.iloc[0]!r})" if len(bad) else ""


def _null_series(spec: ColumnSpec, index: pd.Index) -> pd.Series:
    import pandas as pd

    dtype = _PANDAS_DTYPES.get(spec.dtype, spec.dtype)
    if spec.dtype in _INTS:
        dtype = _nullable_int(dtype)
    elif spec.dtype == "bool":
        dtype = "boolean"
    return pd.Series(None, index=index, dtype=dtype)


@functools.cache
def _numpy_dtype(name: str) -> np.dtype:
    import numpy as np

    return np.dtype(name)


def _nullable_int(dtype: str) -> str:
    """Return pandas' nullable integer dtype for a numpy one: int64 → Int64, uint8 → UInt8."""
    return ("U" + dtype[1:].capitalize()) if dtype[0] == "u" else dtype.capitalize()


def _enforce_tensor(data: Any, spec: ColumnSpec) -> np.ndarray:
    import numpy as np
    import pandas as pd

    shape = spec.shape
    if isinstance(data, pd.DataFrame):
        width = shape[1] if shape is not None and len(shape) == 2 else None
        if width is not None and data.shape[1] != width:
            raise SchemaError(f"the input has {data.shape[1]} columns; the model expects {width}")
        array = data.iloc[:, 0].to_numpy() if shape and len(shape) == 1 else data.to_numpy()
    elif isinstance(data, pd.Series | np.ndarray | list | tuple):
        try:
            array = np.asarray(data)
        except ValueError as exc:
            raise SchemaError(f"cannot read the input as an array: {exc}") from None
    else:
        raise SchemaError(f"cannot read {type(data).__name__} as an array; pass a numpy array")
    if shape is not None:
        if array.size == 0 and array.ndim != len(shape):
            array = array.reshape((0, *(d or 0 for d in shape[1:])))
        fixed = all(d is None or d == n for d, n in zip(shape, array.shape, strict=False))
        if array.ndim != len(shape) or not fixed:
            hint = " (reshape a single row with .reshape(1, -1))" if array.ndim == 1 else ""
            raise SchemaError(f"the input has shape {array.shape}; the model expects {shape}{hint}")
    return _coerce_array(array, spec)


def _coerce_array(array: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    import pandas as pd

    target = spec.dtype
    if target == "object":
        return array
    found = _dtype_name(array)
    if found == target and array.dtype.kind != "O":
        return array
    numeric = found in _INTS or found in _FLOATS
    problem = None
    if numeric and array.dtype.kind == "O":  # numbers and None from JSON
        array = array.astype("float64")
    if numeric and target in _FLOATS:
        return array.astype(target)
    if numeric and target in _INTS:
        problem = _int_problem(array.ravel(), target)
        if problem is None:
            return array.astype(target)
    elif found == target == "string":
        return array
    elif found == target and target in ("bool", "datetime", "timedelta"):
        if target == "bool" and array.dtype.kind == "O" and pd.isna(array).any():
            problem = "nulls"
        else:
            return array.astype(
                {"bool": "bool", "datetime": "M8[ns]", "timedelta": "m8[ns]"}[target]
            )
    elif target == "datetime" and found == "string":
        try:
            return array.astype("datetime64[ns]")
        except ValueError as exc:
            problem = f"unparseable strings ({exc})"
    suffix = f" with {problem}" if problem else ""
    raise SchemaError(f"the input array: expected {target}, found {found}{suffix}")
