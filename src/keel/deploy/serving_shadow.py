"""Shadow comparison: how many rows of a shadow's answer agree with the live answer.

Labels (integers, booleans, text) agree when equal; floats when close
(``numpy.isclose(rtol=1e-5, atol=1e-8)``, NaN equal to NaN). A row agrees when every value
of it does, so a ``predict_proba`` row agrees only if every class probability is close.
Answers of different shapes agree on no row; a number never equals a text label.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["ATOL", "RTOL", "agreeing_rows", "compare_outputs"]

RTOL = 1e-5
ATOL = 1e-8
_NUMERIC = "biuf"


def _rows(array: np.ndarray) -> int:
    return array.shape[0] if array.ndim else 1


def _row_mask(live: np.ndarray, shadow: np.ndarray) -> np.ndarray:
    """Per-row agreement of two answers (all False when their shapes differ)."""
    rows = _rows(live)
    if live.shape != shadow.shape:
        return np.zeros(rows, dtype=bool)
    if not live.size:
        return np.ones(rows, dtype=bool)  # rows of zero width agree vacuously
    a, b = live.dtype.kind, shadow.dtype.kind
    if a in _NUMERIC and b in _NUMERIC:
        if "f" in (a, b):
            same = np.isclose(live, shadow, rtol=RTOL, atol=ATOL, equal_nan=True)
        else:
            same = live == shadow
    elif a in _NUMERIC or b in _NUMERIC:
        return np.zeros(rows, dtype=bool)
    else:  # text or objects: Python equality, element by element
        pairs = zip(live.reshape(-1).tolist(), shadow.reshape(-1).tolist(), strict=True)
        same = np.fromiter((x == y for x, y in pairs), dtype=bool, count=live.size)
    return np.asarray(same, dtype=bool).reshape(rows, -1).all(axis=1)


def agreeing_rows(live: np.ndarray, shadow: np.ndarray) -> tuple[int, int]:
    """Return ``(agreeing rows, rows)`` of two answers to the same request."""
    live, shadow = np.asarray(live), np.asarray(shadow)
    return int(_row_mask(live, shadow).sum()), _rows(live)


def compare_outputs(
    live: Mapping[str, np.ndarray], shadow: Mapping[str, np.ndarray]
) -> tuple[int, int]:
    """Return ``(agreeing rows, rows)`` on ``predict``, or on every shared output without it.

    The live answer's row count is the denominator; a shadow missing every output agrees
    on no row.
    """
    if "predict" in live and "predict" in shadow:
        names = ["predict"]
    else:
        names = sorted(set(live) & set(shadow))
    first = next(iter(live.values()), None)
    rows = 1 if first is None else _rows(np.asarray(first))
    if not names:
        return 0, rows
    mask = None
    for name in names:
        got = _row_mask(np.asarray(live[name]), np.asarray(shadow[name]))
        if mask is not None and got.shape != mask.shape:
            return 0, rows
        mask = got if mask is None else mask & got
    return (0, rows) if mask is None else (int(mask.sum()), len(mask))
