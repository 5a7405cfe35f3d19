"""MLflow's scoring formats for ``POST /invocations``, read into one DataFrame.

JSON bodies hold exactly one of ``dataframe_split`` (``{"columns", "data"}``, optional
``index``), ``dataframe_records`` (a list of ``{column: value}``), ``instances`` (a list of
records or of rows) or ``inputs`` (a dict of columns, or a list as for ``instances``), as
``mlflow models serve`` accepts them; a ``text/csv`` body is read with a header row. Rows
given as lists take the model's column order from the signature when the frame is checked.

:func:`split_matrix` is the fast way in: plain numeric rows (a ``dataframe_split``, or
``instances``/``inputs`` given as rows) become one numpy array without a DataFrame, for
``ModelRuntime.prepare_rows``; whatever it cannot be sure of (None) goes through
:func:`frame_of`, so both ways give the same answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

from ._values import float_rows
from .codec_json import parse_json

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMATS", "frame_of", "is_csv", "read_invocation", "split_matrix"]

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def read_invocation(body: bytes, content_type: str) -> pd.DataFrame:
    """Return the DataFrame an ``/invocations`` body describes, or raise ``InvalidInput``."""
    import pandas as pd

    if is_csv(content_type):
        import io

        try:
            return pd.read_csv(io.BytesIO(body))
        except (ValueError, pd.errors.ParserError) as exc:
            raise InvalidInput(f"cannot read the CSV body: {exc}") from None
    return frame_of(parse_json(body))


def is_csv(content_type: str) -> bool:
    """Whether an ``/invocations`` body of this content type is CSV (else JSON)."""
    return content_type.split(";", maxsplit=1)[0].strip().lower() == "text/csv"


def split_matrix(doc: Any, raw: bytes | None = None) -> tuple[list[str] | None, Any] | None:
    """``(columns, 2-D numpy array)`` for a plain numeric ``dataframe_split``; ``(None,
    array)`` for ``instances`` or ``inputs`` given as plain numeric rows (positional: the
    signature's column order, as :func:`frame_of`'s unnamed columns get); else None.

    Plain: the only key, with string ``columns`` and non-empty ``data`` rows (or non-empty
    rows) holding only numbers (no index, no nulls, no booleans, no text, no records), so
    the array holds what :func:`frame_of`'s DataFrame would once the signature's numeric
    dtype is applied (integers mixed with floats become floats, as a DataFrame column of
    both does; with a magnitude beyond 2**53, where that could round, the DataFrame
    decides). ``raw``, the body ``doc`` was parsed from, lets booleans be ruled out without
    a look at every value. Anything else (None) goes through :func:`frame_of`.
    """
    if not isinstance(doc, Mapping) or len(doc) != 1:
        return None
    [(key, value)] = doc.items()
    columns: list[str] | None = None
    if key == "dataframe_split":
        if not isinstance(value, Mapping) or len(value) != 2:
            return None
        columns, data = value.get("columns"), value.get("data")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            return None
        strings, inner = [key, *value.keys(), *columns], "data"
    elif key in ("instances", "inputs"):
        data, strings, inner = value, [key], key
    else:
        return None
    if not isinstance(data, list) or not data:
        return None
    tail = None if raw is None else _value_tail(raw, inner)
    # numpy and struct read true/false as 1/0 next to numbers; the DataFrame refuses them
    if raw is not None and not (
        (tail is not None and raw.find(b"t", tail) == raw.find(b"f", tail) == -1)
        or _no_booleans(raw, strings)
    ):
        return None
    has_float = raw is not None and tail is not None and _float_token(raw, tail)
    matrix = float_rows(data, has_float=has_float)
    if matrix is None:
        matrix = _numeric_rows(data)
    if matrix is None or (raw is None and not _no_booleans_in(data, matrix)):
        return None
    if (
        matrix.dtype.kind == "f"
        and matrix.size
        and (matrix.max() > _EXACT_FLOAT_INT or matrix.min() < -_EXACT_FLOAT_INT)
    ):
        return None
    return columns, matrix


# Integers up to 2**53 in magnitude are exact as float64.
_EXACT_FLOAT_INT = 2.0**53


def _numeric_rows(data: list[Any]) -> Any:
    """``numpy.array(data)`` when that is a 2-D array of numbers, else None."""
    import numpy as np

    try:
        matrix = np.array(data)
    except (TypeError, ValueError, OverflowError):  # ragged rows, huge integers
        return None
    if matrix.ndim != 2 or matrix.dtype.kind not in "iuf":
        return None
    return matrix


def _value_tail(raw: bytes, key: str) -> int | None:
    """Where the value of the key named ``key`` starts in the JSON text ``raw``, when that
    value ends the body and holds no string (no quote follows the key) — the usual
    ``{"columns": …, "data": …}`` or ``{"instances": …}`` body; else None.

    Without a backslash in ``raw``, a ``"data"`` followed by ``:`` is a key named data; the
    first is the one outside the data (a key comes before its value, columns are only
    strings; ``instances`` and ``inputs`` are the body's only key). No quote after it means
    no key, hence no duplicate, follows: orjson kept this one. What follows the key is then
    numbers, brackets, commas, ``true``/``false``/``null`` and the closing braces, so
    ``memchr`` scans of it answer "any boolean?" (bytes ``t``, ``f``) and "any float?"
    (:func:`_float_token`) without a look at every value.
    """
    if b"\\" in raw:
        return None
    quoted = f'"{key}"'.encode()
    at = raw.find(quoted)
    for _ in range(8):  # a few columns named like the key; past that the count check decides
        if at == -1:
            return None
        at += len(quoted)
        if raw[at : at + 64].lstrip().startswith(b":"):
            return at if raw.find(b'"', at) == -1 else None
        at = raw.find(quoted, at)
    return None


def _float_token(raw: bytes, tail: int) -> bool:
    """Whether a number written as a float (``.``, ``e`` or ``E``) follows ``tail``; with
    no boolean there (``false`` and ``true`` hold an ``e``), only numbers can hold them."""
    return raw.find(b".", tail) != -1 or raw.find(b"e", tail) != -1 or raw.find(b"E", tail) != -1


def _no_booleans(raw: bytes, strings: list[str]) -> bool:
    """Whether the JSON text ``raw``, whose strings are all in ``strings``, holds no
    ``true``/``false``.

    Outside strings, the bytes ``t`` and ``a`` appear in JSON only in those literals
    (numbers are digits, ``.``, ``e``, ``E``, ``+``, ``-``; UTF-8 multi-byte sequences hold
    no ASCII byte). Without a backslash, every string appears in ``raw`` as its UTF-8
    bytes, so equal counts of ``t`` and ``a`` in ``raw`` and in ``strings`` mean neither
    literal occurs. An unlisted string only raises the count: the answer is then False,
    never wrongly True. Two byte counts instead of a type check of every value.
    """
    if b"\\" in raw:
        return False
    text = "".join(strings).encode()
    return raw.count(b"t") == text.count(b"t") and raw.count(b"a") == text.count(b"a")


def _no_booleans_in(data: list[Any], matrix: Any) -> bool:
    """Whether the rows ``data``, read as the 2-D ``matrix``, hold no boolean.

    A boolean reads as 0 or 1, so only the values equal to 0 or 1 need their type looked
    at; when there are many of those, every value's type is.
    """
    import numpy as np

    flat = matrix.reshape(-1)
    spots = np.flatnonzero((flat == 0) | (flat == 1))
    if len(spots) > _FEW_SPOTS:
        return bool not in set(map(type, itertools.chain.from_iterable(data)))
    width = matrix.shape[1]
    return not any(type(data[i // width][i % width]) is bool for i in spots.tolist())


_FEW_SPOTS = 64


def frame_of(doc: Any) -> pd.DataFrame:
    """The DataFrame a parsed ``/invocations`` JSON body describes, or ``InvalidInput``."""
    if not isinstance(doc, Mapping):
        raise InvalidInput(f"the body must be a JSON object with one of {list(FORMATS)}")
    present = [key for key in FORMATS if key in doc]
    if len(present) != 1:
        raise InvalidInput(f"the body must hold exactly one of {list(FORMATS)}, got {present}")
    key = present[0]
    try:
        return _frame(key, doc[key])
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot read {key!r} as a table: {exc}") from None


def _frame(key: str, value: Any) -> pd.DataFrame:
    import pandas as pd

    if key == "dataframe_split":
        if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
            raise InvalidInput("'dataframe_split' needs 'data' (a list of rows) and 'columns'")
        _check_lengths(key, value["data"])
        return pd.DataFrame(value["data"], columns=value.get("columns"), index=value.get("index"))
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
            raise InvalidInput("'dataframe_records' must be a list of {column: value} objects")
        return pd.DataFrame.from_records(value)
    if key == "inputs" and isinstance(value, Mapping):
        return pd.DataFrame(dict(value))
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{key!r} must be a non-empty list of records or rows")
    if all(isinstance(r, Mapping) for r in value):
        return pd.DataFrame.from_records(value)
    _check_lengths(key, value)
    return pd.DataFrame(value)  # rows: the signature's column order is applied later


def _check_lengths(key: str, rows: list[Any]) -> None:
    """``InvalidInput`` when list rows differ in length (pandas would pad them with NaN,
    deprecated since pandas 3, and a missing value is then blamed on a column)."""
    lengths = {len(row) for row in rows if isinstance(row, list)}
    if len(lengths) > 1:
        raise InvalidInput(
            f"the rows of {key!r} must all have the same number of values, got "
            f"{min(lengths)} to {max(lengths)}"
        )
