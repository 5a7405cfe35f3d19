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

numpy and pandas are imported only when data is touched, so reading a signature is light;
the enforcement code lives in ``keel.registry.enforce`` and loads on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from keel.registry.enforce import enforce_schema

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


def __getattr__(name: str) -> Any:
    # enforce_schema lives in keel.registry.enforce, which imports this module: load it on use.
    if name == "enforce_schema":
        from keel.registry.enforce import enforce_schema

        return enforce_schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
