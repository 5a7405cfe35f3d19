"""Buffered prediction-log records as Arrow tables: one row per predicted row.

Runs on the prediction logger's writer thread, never on a request. Records are grouped
by (deployment, UTC hour) — one segment each — and, inside a segment, by layout (the
names, dtypes and shapes of their inputs and outputs), so each group's columns are one
``numpy.concatenate`` each rather than a Python loop per row; the groups' tables are then
concatenated with missing columns as nulls (an unsampled request has no inputs, a failed
one no outputs, two versions may take different columns). Rows of one request share its
``request_id`` and are numbered by ``row``; their order within a segment carries no
meaning.

Column types: ``request_id`` string, ``row`` int32, ``deployment``/``model``/``version``
string, ``time_ms`` int64, ``latency_ms`` float64, ``status`` int16, ``error`` string,
``sampled`` bool; ``input.<column>`` and ``output.<name>`` keep their numpy dtype (text
as string, binary as binary); a 2-D ``[rows, k]`` array becomes ``<prefix>.<j>`` for
j < k, a higher-rank one a fixed-size list per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from keel.monitoring.prediction_store import hour_of

__all__ = ["PREDICTION_SCHEMA", "arrow_columns", "segment_table", "segments_of", "tables_of"]

PREDICTION_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()),
        ("row", pa.int32()),
        ("deployment", pa.string()),
        ("model", pa.string()),
        ("version", pa.string()),
        ("time_ms", pa.int64()),
        ("latency_ms", pa.float64()),
        ("status", pa.int16()),
        ("error", pa.string()),
        ("sampled", pa.bool_()),
    ]
)


def tables_of(
    batch: Sequence[tuple[Any, ...]], rejected: list[tuple[Any, ...]] | None = None
) -> dict[tuple[str, str], pa.Table]:
    """The records of ``batch`` as one table per (deployment, hour) (see
    :func:`segments_of` for ``rejected``)."""
    return {key: segment_table(group) for key, group in segments_of(batch, rejected).items()}


def segments_of(
    batch: Sequence[tuple[Any, ...]], rejected: list[tuple[Any, ...]] | None = None
) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """The records of ``batch`` by (deployment, hour): one segment each.

    A record whose arrays do not all hold its ``rows`` rows, or whose deployment is no
    deployment name, is left out (appended to ``rejected`` when given), so one
    inconsistent record never costs the others."""
    segments: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for record in batch:
        if _valid_name(record[0]) and _consistent(record):
            segments[(record[0], hour_of(record[4]))].append(record)
        elif rejected is not None:
            rejected.append(record)
    return segments


@lru_cache(maxsize=1024)
def _valid_name(name: str) -> bool:
    # the name becomes a path segment: "../x" or "a/b" must never reach the store
    from keel.deploy.entities import check_deployment_name
    from keel.errors import InvalidInput

    try:
        check_deployment_name(name)
    except InvalidInput:
        return False
    return True


def _consistent(record: tuple[Any, ...]) -> bool:
    rows, inputs, outputs = record[8], record[9], record[11]
    arrays = [] if outputs is None else list(outputs.values())
    if isinstance(inputs, np.ndarray):
        if inputs.ndim != 2 or len(record[10] or range(inputs.shape[1])) != inputs.shape[1]:
            return False
        arrays.append(inputs)
    elif inputs is not None:
        arrays += list(inputs.values())
    try:
        return all(np.shape(a)[0] == rows for a in arrays)
    except (IndexError, TypeError, ValueError):  # a scalar or something not array-like
        return False


def segment_table(records: list[tuple[Any, ...]]) -> pa.Table:
    """One segment's records as one table (layout groups concatenated, see the module)."""
    layouts: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for record in records:
        layouts[(_input_layout(record[9], record[10]), _output_layout(record[11]))].append(record)
    tables = [_group(group) for group in layouts.values()]
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _shape_key(array: Any) -> tuple[str, tuple[int, ...]]:
    array = np.asarray(array)
    return array.dtype.str, array.shape[1:]


def _input_layout(inputs: Any, names: Sequence[str] | None) -> tuple[Any, ...]:
    if inputs is None:
        return ("none",)
    if isinstance(inputs, np.ndarray):
        return ("block", tuple(names or ()), *_shape_key(inputs))
    return ("columns", tuple((name, *_shape_key(a)) for name, a in inputs.items()))


def _output_layout(outputs: Any) -> tuple[Any, ...]:
    if outputs is None:
        return ()
    return tuple((name, *_shape_key(a)) for name, a in outputs.items())


def _group(records: list[tuple[Any, ...]]) -> pa.Table:
    """One table for records of one layout: metadata repeated per row, arrays concatenated."""
    rows = np.fromiter((r[8] for r in records), dtype=np.int64, count=len(records))
    total = int(rows.sum())
    owner = np.repeat(np.arange(len(records)), rows)
    starts = np.cumsum(rows) - rows
    row_index = (np.arange(total) - np.repeat(starts, rows)).astype(np.int32)
    take = pa.array(owner)

    def meta(position: int, kind: pa.DataType) -> pa.Array:
        return pa.array([r[position] for r in records], kind).take(take)

    columns: dict[str, pa.Array] = {
        "request_id": meta(3, pa.string()),
        "row": pa.array(row_index),
        "deployment": meta(0, pa.string()),
        "model": meta(1, pa.string()),
        "version": meta(2, pa.string()),
        "time_ms": meta(4, pa.int64()),
        "latency_ms": meta(5, pa.float64()),
        "status": meta(6, pa.int16()),
        "error": meta(7, pa.string()),
        "sampled": pa.array([r[9] is not None for r in records], pa.bool_()).take(take),
    }
    first = records[0]
    if first[9] is not None:
        if isinstance(first[9], np.ndarray):
            by_column = _columns_of([np.asarray(r[9]) for r in records])
            names = list(first[10] or [str(j) for j in range(by_column.shape[0])])
            for j, name in enumerate(names):
                columns.update(arrow_columns(f"input.{name}", by_column[j]))
        else:
            for name in first[9]:
                columns.update(
                    arrow_columns(f"input.{name}", _concat([r[9][name] for r in records]))
                )
    if first[11] is not None:
        for name in first[11]:
            columns.update(arrow_columns(f"output.{name}", _concat([r[11][name] for r in records])))
    return pa.table(columns)


def _columns_of(blocks: list[np.ndarray]) -> np.ndarray:
    """The ``[rows, columns, …]`` blocks stacked by row, as ``[columns, rows, …]`` with
    each column contiguous (Arrow takes it as is).

    One copy, block by block: each block is transposed while it is in cache, which costs
    a tenth of concatenating first and then transposing the whole (a strided pass over
    tens of MB: ~100 ms for 200,000 rows of 30 floats, the serving process's CPU).
    """
    first = blocks[0]
    if first.ndim != 2:
        return np.ascontiguousarray(np.moveaxis(_concat(blocks), 1, 0))
    total = sum(b.shape[0] for b in blocks)
    out = np.empty((first.shape[1], total), dtype=first.dtype)
    return np.concatenate([b.T for b in blocks], axis=1, out=out)


def _concat(arrays: list[Any]) -> np.ndarray:
    return np.asarray(arrays[0]) if len(arrays) == 1 else np.concatenate(arrays)


def arrow_columns(prefix: str, array: Any) -> dict[str, pa.Array]:
    """``array`` (``[rows, …]``) as Arrow columns named ``prefix`` or ``prefix.<j>``."""
    array = np.asarray(array)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim == 2:
        return {f"{prefix}.{j}": _arrow(array[:, j]) for j in range(array.shape[1])}
    if array.ndim > 2:
        flat = array.reshape(array.shape[0], -1)
        values = _arrow(flat.reshape(-1))
        return {prefix: pa.FixedSizeListArray.from_arrays(values, flat.shape[1])}
    return {prefix: _arrow(array)}


def _arrow(values: np.ndarray) -> pa.Array:
    """One 1-D numpy array as Arrow; object arrays of mixed types become text."""
    if values.dtype.kind != "O":
        return pa.array(values)
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = [
            None if v is None else v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in values.tolist()
        ]
        return pa.array(text, pa.string())
