"""Model signatures: what a model takes and returns, inferred from data and enforced on it.

A :class:`Signature` holds an input :class:`Schema` and, optionally, an output one. A schema
is either ``"dataframe"`` (named, typed columns) or ``"tensor"`` (one ndarray with a dtype and
a shape, ``None`` for a variable dimension). :func:`enforce_schema` checks data against a
schema with vectorised pandas/numpy operations, casting where no information is lost and
raising :class:`~keel.errors.SchemaError` (naming the column, expected and found dtype)
otherwise. Casting rules, for dataframe columns and tensors alike:

* integer or float → any float (float64 → float32 included: JSON numbers arrive as float64
  and the model decides its own precision);
* integer → narrower integer and float → integer only when every value fits and has no
  fractional part; bool ↔ number and string → number are refused;
* nulls are accepted in float and ``object`` columns, elsewhere only when the column is
  ``optional``. An optional column may also be absent (it is then filled with nulls); an
  integer column holding nulls becomes pandas' nullable ``Int64`` (and friends).

numpy and pandas are imported only when data is touched, so reading a signature is light.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import InvalidInput, SchemaError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "DTYPES",
    "ColumnSpec",
    "Schema",
    "Signature",
    "enforce_schema",
    "infer_schema",
    "infer_signature",
]

_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLOATS = ("float16", "float32", "float64")
_OTHERS = ("bool", "string", "binary", "datetime", "timedelta", "category", "object")
DTYPES: frozenset[str] = frozenset((*_INTS, *_FLOATS, *_OTHERS))
_NULLS_ALWAYS_OK = frozenset((*_FLOATS, "object"))
_NUMPY_NAMES = frozenset((*_INTS, *_FLOATS, "bool"))
_KINDS = ("dataframe", "tensor")
# pandas.api.types.infer_dtype results for object columns → Keel dtype names.
_OBJECT_KINDS = {
    "string": "string",
    "bytes": "binary",
    "integer": "int64",
    "floating": "float64",
    "mixed-integer-float": "float64",
    "decimal": "float64",
    "boolean": "bool",
    "datetime64": "datetime",
    "datetime": "datetime",
    "date": "datetime",
    "timedelta64": "timedelta",
    "timedelta": "timedelta",
    "categorical": "category",
}
_PANDAS_DTYPES = {
    "string": "object",
    "binary": "object",
    "object": "object",
    "datetime": "datetime64[ns]",
    "timedelta": "timedelta64[ns]",
    "category": "category",
}


@dataclass(frozen=True)
class ColumnSpec:
    """One named column of a dataframe schema, or the single array of a tensor schema."""

    name: str | None
    dtype: str
    shape: tuple[int | None, ...] | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidInput(f"a column name must be a string or null, not {self.name!r}")
        if self.dtype not in DTYPES:
            raise InvalidInput(f"unknown dtype {self.dtype!r}; expected one of {sorted(DTYPES)}")
        if self.shape is not None:
            if not isinstance(self.shape, tuple | list):
                raise InvalidInput(f"a shape must be a list of sizes, not {self.shape!r}")
            shape = tuple(self.shape)
            if not all(_is_dim(d) for d in shape):
                raise InvalidInput(f"shape {list(shape)} must hold non-negative ints or nulls")
            object.__setattr__(self, "shape", shape)
        if not isinstance(self.optional, bool):
            raise InvalidInput(f"optional must be true or false, not {self.optional!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return this column as a JSON-able dict."""
        shape = None if self.shape is None else list(self.shape)
        return {"name": self.name, "dtype": self.dtype, "shape": shape, "optional": self.optional}

    def __str__(self) -> str:
        text = self.dtype if self.name is None else f"{self.name}: {self.dtype}"
        if self.shape is not None:
            text += f" {self.shape}"
        return text + ("?" if self.optional else "")


@dataclass(frozen=True)
class Schema:
    """Named, typed columns (``"dataframe"``) or one typed, shaped array (``"tensor"``)."""

    columns: tuple[ColumnSpec, ...]
    kind: Literal["dataframe", "tensor"]

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise InvalidInput(f"schema kind must be one of {list(_KINDS)}, not {self.kind!r}")
        columns = tuple(self.columns)
        if not columns or not all(isinstance(c, ColumnSpec) for c in columns):
            raise InvalidInput("a schema needs at least one column, each a ColumnSpec")
        object.__setattr__(self, "columns", columns)
        if self.kind == "tensor":
            if len(columns) != 1:
                raise InvalidInput(f"a tensor schema has exactly one column, not {len(columns)}")
            return
        names = [c.name for c in columns]
        if any(not isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise InvalidInput(f"dataframe columns need unique string names, got {names}")
        if any(c.shape is not None for c in columns):
            raise InvalidInput("dataframe columns are scalars: drop their shape")

    @property
    def names(self) -> tuple[str, ...]:
        """The column names in order (empty for a tensor schema)."""
        return tuple(c.name for c in self.columns if c.name is not None)

    def to_dict(self) -> dict[str, Any]:
        """Return this schema as a JSON-able dict."""
        return {"kind": self.kind, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "schema") -> Schema:
        """Return the schema a :meth:`to_dict` result describes; malformed → ``InvalidInput``."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{where} must be an object, not {type(data).__name__}")
        columns = data.get("columns")
        if not isinstance(columns, list):
            raise InvalidInput(f"{where}.columns must be a list of columns")
        specs = []
        for i, col in enumerate(columns):
            if not isinstance(col, Mapping):
                raise InvalidInput(f"{where}.columns[{i}] must be an object")
            try:
                specs.append(
                    ColumnSpec(
                        name=col.get("name"),
                        dtype=col.get("dtype"),  # type: ignore[arg-type]
                        shape=col.get("shape"),
                        optional=col.get("optional", False),
                    )
                )
            except InvalidInput as exc:
                raise InvalidInput(f"{where}.columns[{i}]: {exc.message}") from None
        try:
            return cls(columns=tuple(specs), kind=data.get("kind"))  # type: ignore[arg-type]
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc.message}") from None

    def __str__(self) -> str:
        shown = ", ".join(str(c) for c in self.columns[:5])
        more = len(self.columns) - 5
        return f"{self.kind}[{shown}{f', … +{more} more' if more > 0 else ''}]"


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``) and, if known, what it returns (``outputs``)."""

    inputs: Schema
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return this signature as a JSON-able dict."""
        outputs = None if self.outputs is None else self.outputs.to_dict()
        return {"inputs": self.inputs.to_dict(), "outputs": outputs}

    @classmethod
    def from_dict(cls, data: Any) -> Signature:
        """Return the signature a :meth:`to_dict` result describes; malformed → ``InvalidInput``."""
        if not isinstance(data, Mapping) or "inputs" not in data:
            raise InvalidInput("a signature must be an object with 'inputs' (and 'outputs')")
        outputs = data.get("outputs")
        return cls(
            inputs=Schema.from_dict(data["inputs"], where="signature.inputs"),
            outputs=None
            if outputs is None
            else Schema.from_dict(outputs, where="signature.outputs"),
        )


def infer_schema(data: Any) -> Schema:
    """Return the schema of ``data``: a DataFrame, Series, ndarray, list or dict of columns."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return _frame_schema(data)
    if isinstance(data, pd.Series):
        if data.name is None:
            return Schema((ColumnSpec(None, _dtype_name(data), (None,)),), "tensor")
        return _frame_schema(data.to_frame())
    if isinstance(data, np.ndarray):
        return _array_schema(data)
    if isinstance(data, Mapping) or (
        isinstance(data, list) and data and isinstance(data[0], Mapping)
    ):
        try:
            return _frame_schema(pd.DataFrame(data))
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"cannot read the data as a table: {exc}") from None
    if isinstance(data, list | tuple) and data:
        try:
            array = np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"cannot read the list as an array: {exc}") from None
        if array.dtype != object:
            return _array_schema(array)
    raise InvalidInput(
        f"cannot infer a schema from {type(data).__name__}; pass a pandas DataFrame or Series, "
        "a numpy array, a list of records or a dict of columns"
    )


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """Return the signature of a model given an example input and, optionally, its output."""
    outputs = None if model_output is None else infer_schema(model_output)
    return Signature(inputs=infer_schema(model_input), outputs=outputs)


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


# -- inference helpers ---------------------------------------------------------------------


def _frame_schema(frame: pd.DataFrame) -> Schema:
    if frame.columns.nlevels != 1 or not frame.columns.is_unique:
        raise InvalidInput("a DataFrame needs unique, single-level column names")
    nulls = frame.isna().any()
    columns = []
    for i, name in enumerate(frame.columns):
        dtype = _dtype_name(frame.iloc[:, i])
        optional = dtype not in _NULLS_ALWAYS_OK and bool(nulls.iloc[i])
        columns.append(ColumnSpec(str(name), dtype, optional=optional))
    return Schema(tuple(columns), "dataframe")


def _array_schema(array: np.ndarray) -> Schema:
    if array.ndim == 0:
        raise InvalidInput("cannot infer a schema from a 0-d array; pass at least one row")
    spec = ColumnSpec(None, _dtype_name(array), (None, *array.shape[1:]))
    return Schema((spec,), "tensor")


def _dtype_name(values: Any) -> str:
    """Return the Keel dtype name of a Series' or ndarray's values."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    types = pd.api.types
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype) or types.is_float_dtype(dtype):
        return np.dtype(getattr(dtype, "numpy_dtype", dtype)).name
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_timedelta64_dtype(dtype):
        return "timedelta"
    if types.is_object_dtype(dtype):
        flat = values.ravel() if isinstance(values, np.ndarray) else values
        return _OBJECT_KINDS.get(types.infer_dtype(flat, skipna=True), "object")
    if types.is_string_dtype(dtype):
        return "string"
    if isinstance(dtype, np.dtype) and dtype.kind == "S":
        return "binary"
    return "object"


def _is_dim(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _expects(schema: Schema) -> str:
    if schema.kind == "tensor":
        spec = schema.columns[0]
        shape = "" if spec.shape is None else f" of shape {spec.shape}"
        return f"a {spec.dtype} array{shape}"
    return f"columns {list(schema.names)}"


# -- enforcement ---------------------------------------------------------------------------


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
