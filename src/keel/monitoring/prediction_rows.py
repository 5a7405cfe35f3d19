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

import time
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from keel.monitoring.prediction_store import HOUR_MS, hour_of

__all__ = ["PREDICTION_SCHEMA", "arrow_columns", "segment_table", "segments_of", "tables_of"]

_LAST_HOUR = 253402300800000 // HOUR_MS  # 10000-01-01: past it, no hour has a name

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
    tables = {
        key: segment_table(group, rejected) for key, group in segments_of(batch, rejected).items()
    }
    return {key: table for key, table in tables.items() if table is not None}


def segments_of(
    batch: Sequence[tuple[Any, ...]], rejected: list[tuple[Any, ...]] | None = None
) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    """The records of ``batch`` by (deployment, hour): one segment each.

    A record whose deployment is no deployment name, or whose time is outside years
    1970-9999, is left out (appended to ``rejected`` when given); a record whose arrays do
    not hold its rows is left out later, by :func:`segment_table`. The usual batch — one
    deployment, one hour — is recognised without a Python step per record.
    """
    if not batch:
        return {}
    deployments = [r[0] for r in batch]
    times = [r[4] for r in batch]
    try:
        hours = np.array(times, dtype=np.int64) // HOUR_MS
    except OverflowError:  # an int past int64: checked one by one
        hours = np.array([t // HOUR_MS if 0 <= t < _LAST_HOUR * HOUR_MS else -1 for t in times])
    valid_time = (hours >= 0) & (hours < _LAST_HOUR)
    first = deployments[0]
    if (
        deployments.count(first) == len(batch)
        and bool(valid_time.all())
        and hours.min() == hours.max()
    ):
        if _valid_name(first):
            return {(first, _hour_name(int(hours[0]))): list(batch)}
        if rejected is not None:
            rejected += batch
        return {}
    segments: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    names = {d: _valid_name(d) for d in set(deployments)}
    for record, hour, ok in zip(batch, hours.tolist(), valid_time.tolist(), strict=True):
        if ok and names[record[0]]:
            segments[(record[0], _hour_name(hour))].append(record)
        elif rejected is not None:
            rejected.append(record)
    return segments


@lru_cache(maxsize=1024)
def _hour_name(hour: int) -> str:
    return hour_of(hour * HOUR_MS)


@lru_cache(maxsize=1024)
def _valid_name(name: Any) -> bool:
    # the name becomes a path segment: "../x" or "a/b" must never reach the store
    from keel.deploy.entities import check_deployment_name
    from keel.errors import InvalidInput

    if not isinstance(name, str):
        return False
    try:
        check_deployment_name(name)
    except InvalidInput:
        return False
    return True


def _columns_key(columns: Any, rows: int) -> tuple[Any, ...] | None:
    """Names, dtypes and trailing shapes of a mapping of ``[rows, …]`` arrays, or None
    when one is not such an array (or ``columns`` no mapping)."""
    key: list[Any] = []
    try:
        items = columns.items()
    except AttributeError:
        return None
    for name, value in items:
        array = value
        if type(array) is not np.ndarray:
            try:
                array = np.asarray(value)
            except (TypeError, ValueError):
                return None
        shape = array.shape
        if not shape or shape[0] != rows:
            return None
        key += (name, array.dtype, shape[1:] if len(shape) > 1 else ())
    return tuple(key)


def _layout_of(record: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The names, dtypes and shapes of a record's inputs and outputs (records of one
    layout concatenate column by column), or None when an array does not hold the
    record's rows. It is the writer's one Python call per record, so it is kept lean:
    ``keel serve`` passes one tuple of input names for every request (compared by
    identity first)."""
    rows, inputs, names, outputs = record[8], record[9], record[10], record[11]
    if inputs is None:
        in_key: Any = None
    elif type(inputs) is np.ndarray:
        shape = inputs.shape
        if len(shape) != 2 or shape[0] != rows or (names is not None and len(names) != shape[1]):
            return None
        in_key = (inputs.dtype, shape[1], names if type(names) is tuple else tuple(names or ()))
    else:
        in_key = _columns_key(inputs, rows)
        if in_key is None:
            return None
    if outputs is None:
        return (in_key, None)
    out_key = _columns_key(outputs, rows)
    if out_key is None:
        return None
    return (in_key, out_key)


def segment_table(
    records: list[tuple[Any, ...]], rejected: list[tuple[Any, ...]] | None = None
) -> pa.Table | None:
    """One segment's records as one table (layout groups concatenated, see the module);
    None when every record was left out (appended to ``rejected``: an array that does
    not hold its record's rows)."""
    keys: list[Any] = []
    for start in range(0, len(records), CHUNK_RECORDS):
        keys += [_layout_of(r) for r in records[start : start + CHUNK_RECORDS]]
        _let_others_run()
    if keys.count(keys[0]) == len(keys) and keys[0] is not None:
        return _chunked(records)
    layouts: dict[tuple[Any, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for record, key in zip(records, keys, strict=True):
        if key is None:
            if rejected is not None:
                rejected.append(record)
        else:
            layouts[key].append(record)
    tables = [_chunked(group) for group in layouts.values()]
    if not tables:
        return None
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


# The writer thread shares the GIL with the serving event loop. A C call holds the GIL
# until it returns, and Python code keeps it up to the 5 ms switch interval, so a flush
# of 20,000 records done in one go stalls every request in flight for tens of ms. It is
# converted in chunks instead, giving the GIL away between them: a chunk of 1,024 one-row
# or 163 hundred-row requests of 30 floats is 2-5 ms of CPU on a loaded 2-core machine
# (less on an idle one), so the loop waits at most that long.
CHUNK_RECORDS = 1024
CHUNK_ROWS = 16_384


def _let_others_run() -> None:
    time.sleep(0)  # releases the GIL: a thread waiting for it takes it now


def _chunked(records: list[tuple[Any, ...]]) -> pa.Table:
    """:func:`_group` of records of one layout, a chunk at a time (see above)."""
    if len(records) <= CHUNK_RECORDS and sum(r[8] for r in records) <= CHUNK_ROWS:
        return _group(records)
    parts, start, rows = [], 0, 0
    for end, record in enumerate(records):
        rows += record[8]
        if end + 1 - start >= CHUNK_RECORDS or rows >= CHUNK_ROWS:
            parts.append(_group(records[start : end + 1]))
            _let_others_run()
            start, rows = end + 1, 0
    if start < len(records):
        parts.append(_group(records[start:]))
    return pa.concat_tables(parts, promote_options="permissive")


_META = (
    ("request_id", 3, pa.string()),
    ("deployment", 0, pa.string()),
    ("model", 1, pa.string()),
    ("version", 2, pa.string()),
    ("time_ms", 4, pa.int64()),
    ("latency_ms", 5, pa.float64()),
    ("status", 6, pa.int16()),
    ("error", 7, pa.string()),
)


def _group(records: list[tuple[Any, ...]]) -> pa.Table:
    """One table for records of one layout: metadata repeated per row, arrays concatenated."""
    fields = list(zip(*records, strict=True))  # one tuple per record field, built in C
    count = len(records)
    rows = np.array(fields[8], dtype=np.int64)
    total = int(rows.sum())
    if total == count:  # one row per request: nothing to repeat
        take = None
        row_index = np.zeros(total, dtype=np.int32)
    else:
        owner = np.repeat(np.arange(count), rows)
        starts = np.cumsum(rows) - rows
        row_index = (np.arange(total) - np.repeat(starts, rows)).astype(np.int32)
        take = pa.array(owner)
    columns: dict[str, pa.Array] = {}
    for name, position, kind in _META:
        values = fields[position]
        if values.count(values[0]) == count:  # the same for every record (deployment...)
            array = pa.repeat(pa.scalar(values[0], kind), total)
        else:
            array = pa.array(values, kind)
            if take is not None:
                array = array.take(take)
        columns[name] = array
        if name == "request_id":
            columns["row"] = pa.array(row_index)
    sampled = np.array([i is not None for i in fields[9]], dtype=np.bool_)
    columns["sampled"] = pa.array(sampled if take is None else np.repeat(sampled, rows))
    first = records[0]
    if first[9] is not None:
        if isinstance(first[9], np.ndarray):
            by_column = _columns_of(list(fields[9]), total)
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


def _columns_of(blocks: list[np.ndarray], total: int) -> np.ndarray:
    """The ``[rows, columns, …]`` blocks (``total`` rows) stacked by row, as
    ``[columns, rows, …]`` with each column contiguous (Arrow takes it as is).

    One copy, block by block: each block is transposed while it is in cache, which costs
    a tenth of concatenating first and then transposing the whole (a strided pass over
    tens of MB: ~100 ms for 200,000 rows of 30 floats, the serving process's CPU).
    """
    first = blocks[0]
    if first.ndim != 2 or total < 16 * len(blocks):
        # a few rows a block (one-row requests): one concatenation of whole rows, then one
        # transposing copy, beats a strided write per block
        return np.ascontiguousarray(np.moveaxis(_concat(blocks), 1, 0))
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
