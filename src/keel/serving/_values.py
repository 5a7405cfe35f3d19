"""Values of a request against a signature: per-column checks, text coding, model outputs.

Used by :mod:`keel.serving.runtime`: :func:`check_column` is what every input column goes
through (numbers for numeric columns, booleans for bool ones, UTF-8 text decoded for text
ones, no NaN/inf where the column is not optional); :func:`fast_path` decides whether a
signature's inputs can be checked once as one numeric block; :func:`as_array` turns a
model's answer into the array the protocol sends.
"""

from __future__ import annotations

import functools
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.registry.packaging import LoadedModel
    from keel.registry.signature import ColumnSpec

__all__ = [
    "DATATYPE_OF_DTYPE",
    "NUMERIC_KINDS",
    "TEXT_DTYPES",
    "as_array",
    "check_column",
    "datatype_name",
    "decode_text",
    "encode_text",
    "fast_path",
    "float_rows",
    "float_struct",
]

TEXT_DTYPES = frozenset(("string", "category", "datetime", "timedelta"))
NUMERIC_KINDS = "iuf"
DATATYPE_OF_DTYPE = {
    **{f"int{b}": f"INT{b}" for b in (8, 16, 32, 64)},
    **{f"uint{b}": f"UINT{b}" for b in (8, 16, 32, 64)},
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bool": "BOOL",
}


def fast_path(model: LoadedModel, schema: Any) -> tuple[np.dtype | None, str | None]:
    """``(dtype, feed)`` for a signature of required columns of one numeric dtype, else
    ``(None, None)``; ``feed`` says how a checked block goes to a scikit-learn estimator:
    ``"array"`` (fitted on an array, so ``SklearnFlavor.prepare_input`` would convert the
    DataFrame to one) or ``"frame"`` (fitted on named columns, or unknown); None for other
    flavors, whose input goes through ``LoadedModel.predict``.
    """
    if schema.kind == "tensor" or not schema.columns:
        return None, None
    dtypes = {spec.dtype for spec in schema.columns}
    dtype = next(iter(dtypes))
    if (
        len(dtypes) != 1
        or dtype not in DATATYPE_OF_DTYPE
        or dtype == "bool"
        or any(spec.optional for spec in schema.columns)
    ):
        return None, None
    if model.flavor != "sklearn":
        return np.dtype(dtype), None
    estimator = model.unwrap()
    fitted_on_array = getattr(estimator, "feature_names_in_", None) is None and hasattr(
        estimator, "n_features_in_"
    )
    return np.dtype(dtype), "array" if fitted_on_array else "frame"


def check_column(where: str, datatype: str, data: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    """Check one input array against its column spec (kind, finiteness); decode text."""
    target = spec.dtype
    kind = data.dtype.kind
    if target in DATATYPE_OF_DTYPE and target != "bool":
        if kind not in NUMERIC_KINDS:
            raise InvalidInput(f"input {where!r}: expected numbers ({target}), got {datatype}")
    elif target == "bool":
        if kind != "b":
            raise InvalidInput(f"input {where!r}: expected BOOL, got {datatype}")
    elif target in TEXT_DTYPES or target == "binary":
        if datatype != "BYTES":
            raise InvalidInput(f"input {where!r}: expected BYTES ({target}), got {datatype}")
        if target != "binary":
            data = decode_text(where, data)
    if kind == "f" and not spec.optional and data.size and not np.isfinite(data).all():
        raise InvalidInput(
            f"input {where!r} holds NaN or infinite values; the model's signature does not "
            "allow missing values there"
        )
    return data


def decode_text(where: str, data: np.ndarray) -> np.ndarray:
    out = np.empty(data.shape, dtype=object)
    try:
        out.reshape(-1)[:] = [v.decode() for v in data.reshape(-1).tolist()]
    except UnicodeDecodeError:
        raise InvalidInput(f"input {where!r}: BYTES data is not UTF-8 text") from None
    return out


def encode_text(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


def datatype_name(dtype: str) -> str:
    return DATATYPE_OF_DTYPE.get(dtype, "BYTES")


def as_array(result: Any) -> np.ndarray:
    to_numpy = getattr(result, "to_numpy", None)
    array = to_numpy() if callable(to_numpy) else np.asarray(result)
    if array.dtype.kind == "U":
        array = array.astype(object)
    if array.dtype.kind == "O":
        array = np.array(
            [encode_text(v) for v in array.reshape(-1).tolist()], dtype=object
        ).reshape(array.shape)
    return array


@functools.lru_cache(maxsize=64)
def float_struct(count: int) -> struct.Struct:
    """A ``Struct`` packing ``count`` numbers as native float64: the fast way from a JSON
    list of floats to an array (each value converted and type-checked in C; ``None``, text
    and lists raise ``struct.error``, booleans pack as 1.0/0.0)."""
    return struct.Struct(f"={count}d")


def float_rows(data: list[Any], *, has_float: bool = False) -> np.ndarray | None:
    """``data`` as a float64 ``[rows, width]`` array when its rows are equal-length lists of
    numbers of which one is a float (led by one, or ``has_float``), as ``numpy.array(data)``
    would make it, else None.

    Booleans must already be ruled out: ``struct`` packs them as 1.0/0.0. Anything else that
    is not a number (None, text, a nested list or object) or a row of another length makes
    ``pack`` raise, so the values are converted and type-checked in one C loop per row,
    ~2.5x faster than ``numpy.array`` on the nested lists (which first walks them all to
    find the shape and the dtype).
    """
    first = data[0]
    if type(first) is not list or not first or not (has_float or type(first[0]) is float):
        return None  # all integers stay integers (numpy.array decides); odd shapes too
    pack = float_struct(len(first)).pack
    try:
        blob = bytearray().join([pack(*row) for row in data])
    except (struct.error, TypeError, OverflowError):  # text, None, nesting, a short row
        return None
    return np.frombuffer(blob, dtype=np.float64).reshape(len(data), len(first))
