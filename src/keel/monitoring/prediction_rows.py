"""Buffered prediction-log chunks as Arrow tables: one row per predicted row.

Runs on the prediction logger's writer thread, never on a request. A chunk
(``keel.monitoring.prediction_buffer``) holds one deployment's requests of one layout,
each column already contiguous, so its columns become Arrow arrays without a copy and the
per-request metadata is repeated per row in C; there is no Python step per request or
row. A chunk's requests are split by UTC hour (one segment per deployment and hour); a
segment's pieces of one layout are concatenated as they are, those of several layouts with
the missing columns as nulls (an unsampled request has no inputs, a failed one no outputs,
two versions may take different columns). Rows of one request share its ``request_id``
and are numbered by ``row``; their order within a segment carries no meaning.

Column types: ``request_id``, ``deployment``, ``model`` and ``version`` are dictionary
encoded strings (each segment writes a request's id once, not once per row; readers see
text), ``row`` int32, ``time_ms`` int64, ``latency_ms`` float64, ``status`` int16,
``error`` string, ``sampled`` bool; ``input.<column>`` and ``output.<name>`` keep their
numpy dtype (text as string, binary as binary); a 2-D ``[rows, k]`` array becomes
``<prefix>.<j>`` for j < k, a higher-rank one a fixed-size list per row. Columns that
cannot hold a null (numbers, fixed-width text, metadata) are written as required, which
spares the Parquet writer their definition levels.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from keel.monitoring.prediction_buffer import Chunk, Layout
from keel.monitoring.prediction_store import HOUR_MS, hour_of

__all__ = ["Segment", "arrow_columns", "combine", "segments_of"]

_TEXT = pa.dictionary(pa.int32(), pa.string())
_NON_NULL_KINDS = frozenset("biufMmUS")  # numpy kinds that cannot hold a missing value


@dataclass
class Segment:
    """One (deployment, hour)'s rows: its tables (one per layout), how many requests
    they hold, and the chunks they are views of (reusable once the segment is written)."""

    tables: list[pa.Table] = field(default_factory=list)
    records: int = 0
    rows: int = 0
    chunks: list[Chunk] = field(default_factory=list)

    def table(self) -> pa.Table:
        """The segment as one table (:func:`combine`)."""
        return combine(self.tables)


def segments_of(chunks: Sequence[Chunk]) -> dict[tuple[str, str], Segment]:
    """The chunks' requests as one :class:`Segment` per (deployment, hour name).

    A request's id is written once per segment (a dictionary that its rows index), so the
    ids of all of a segment's pieces form one dictionary."""
    pieces: dict[tuple[str, str], list[tuple[Chunk, np.ndarray | None]]] = defaultdict(list)
    for chunk in chunks:
        if not chunk.records:
            continue
        hours = np.array(chunk.times, dtype=np.int64) // HOUR_MS
        first, last = int(hours.min()), int(hours.max())
        if first == last:  # the usual chunk: one hour, taken whole
            pieces[(chunk.deployment, _hour_name(first))].append((chunk, None))
            continue
        for hour in np.unique(hours).tolist():
            pieces[(chunk.deployment, _hour_name(hour))].append(
                (chunk, np.flatnonzero(hours == hour))
            )
    segments: dict[tuple[str, str], Segment] = {}
    for key, parts in pieces.items():
        segment = segments[key] = Segment()
        ids: list[str] = []
        for chunk, picked in parts:
            ids += chunk.request_ids if picked is None else [chunk.request_ids[i] for i in picked]
        dictionary = pa.array(ids, pa.string())
        by_layout: dict[Layout, list[pa.Table]] = defaultdict(list)
        offset = 0
        for chunk, picked in parts:
            table = _piece(chunk, picked, dictionary, offset)
            offset += chunk.records if picked is None else len(picked)
            by_layout[chunk.layout].append(table)
            segment.rows += table.num_rows
            if not segment.chunks or segment.chunks[-1] is not chunk:
                segment.chunks.append(chunk)
        segment.records = offset
        segment.tables = [
            tables[0] if len(tables) == 1 else pa.concat_tables(tables)
            for tables in by_layout.values()
        ]
    return segments


def combine(tables: Sequence[pa.Table]) -> pa.Table:
    """Tables as one: as they are when their schemas agree, else with every column
    nullable (a column one table lacks is null there) and types promoted (to text where
    no type holds both)."""
    if len(tables) == 1:
        return tables[0]
    first = tables[0].schema
    if all(t.schema.equals(first) for t in tables[1:]):
        return pa.concat_tables(tables)
    loose = [
        t.cast(pa.schema([f.with_nullable(True) for f in t.schema]))
        if any(not f.nullable for f in t.schema)
        else t
        for t in tables
    ]
    try:
        return pa.concat_tables(loose, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass
    # a column of one name holding kinds no type takes both (numbers in one version's
    # answers, labels in the next): kept as text rather than losing the segment
    kinds: dict[str, set[pa.DataType]] = defaultdict(set)
    for t in loose:
        for f in t.schema:
            kinds[f.name].add(f.type)
    clash = {name for name, types in kinds.items() if len(types) > 1 and not _unify(name, types)}
    as_text = [
        t.cast(pa.schema([f.with_type(pa.string()) if f.name in clash else f for f in t.schema]))
        for t in loose
    ]
    return pa.concat_tables(as_text, promote_options="permissive")


def _unify(name: str, types: set[pa.DataType]) -> bool:
    """Whether one type holds every one of ``types`` (int64 and float64 do)."""
    try:
        pa.unify_schemas(
            [pa.schema([pa.field(name, t)]) for t in types], promote_options="permissive"
        )
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return False
    return True


@lru_cache(maxsize=1024)
def _hour_name(hour: int) -> str:
    return hour_of(hour * HOUR_MS)


_ZEROS = np.zeros(0, dtype=np.int32)


def _zeros(count: int) -> np.ndarray:
    # one shared block of zero indices (constant columns) instead of a fresh one per piece
    global _ZEROS
    if len(_ZEROS) < count:
        _ZEROS = np.zeros(max(count, 16_384), dtype=np.int32)
    return _ZEROS[:count]


def _piece(chunk: Chunk, picked: np.ndarray | None, ids: pa.Array, offset: int) -> pa.Table:
    """The rows of a chunk's requests (all, or those ``picked``) as one table; their ids
    are ``ids[offset:offset + requests]``."""
    counts = np.array(chunk.counts, dtype=np.int64)
    if picked is None:
        n, total = chunk.records, chunk.rows
        starts = None
    else:
        starts = (np.cumsum(counts) - counts)[picked]
        counts = counts[picked]
        n, total = len(picked), int(counts.sum())
    one_row = total == n
    if one_row:
        row_index = _zeros(total)
        row_take = starts
    else:
        first = (np.cumsum(counts) - counts).astype(np.int32)
        row_index = np.arange(total, dtype=np.int32)
        row_index -= np.repeat(first, counts)
        row_take = None if starts is None else np.repeat(starts, counts) + row_index

    def per_row(values: list[Any], dtype: Any) -> np.ndarray:
        # one value per request of the chunk: the picked requests' values, once per row
        array = np.array(values, dtype=dtype)
        if picked is not None:
            array = array[picked]
        return array if one_row else np.repeat(array, counts)

    def text(values: list[Any]) -> pa.Array:
        if picked is not None:
            values = [values[i] for i in picked]
        head = values[0]
        if values.count(head) == len(values):  # one model, one version: the usual case
            if head is None:
                return pa.nulls(total, _TEXT)
            return _constant(head, total)
        codes: dict[str, int] = {}  # several versions (a canary): one code each
        index = np.array(
            [-1 if v is None else codes.setdefault(v, len(codes)) for v in values], np.int32
        )
        if not one_row:
            index = np.repeat(index, counts)
        missing = index < 0
        index[missing] = 0
        return pa.DictionaryArray.from_arrays(
            index,
            pa.array(list(codes) or [""], pa.string()),
            mask=missing if missing.any() else None,
            safe=False,
        )

    id_index = np.arange(offset, offset + n, dtype=np.int32)
    columns: list[pa.Array] = [
        pa.DictionaryArray.from_arrays(
            id_index if one_row else np.repeat(id_index, counts), ids, safe=False
        ),
        _arrow(row_index),
        _constant(chunk.deployment, total),
        text(chunk.models),
        text(chunk.versions),
        _arrow(per_row(chunk.times, np.int64)),
        _arrow(per_row(chunk.latencies, np.float64)),
        _arrow(per_row(chunk.statuses, np.int16)),
    ]
    errors = chunk.errors if picked is None else [chunk.errors[i] for i in picked]
    if errors.count(None) == len(errors):
        columns.append(pa.nulls(total, pa.string()))
    else:
        error = pa.array(errors, pa.string())
        columns.append(error if one_row else error.take(pa.array(np.repeat(np.arange(n), counts))))
    columns.append(pa.repeat(pa.scalar(chunk.layout.inputs is not None), total))
    layout = chunk.layout
    for spec, store in zip(layout.fields, chunk.stores, strict=True):
        if spec.by_column:  # a [rows, k] block, stored [k, capacity]: k columns
            if row_take is None:
                columns += _rows_of(store, total)
            else:
                columns += [_arrow(column) for column in store[:, row_take]]
        else:
            values = store[:total] if row_take is None else store[row_take]
            columns += arrow_columns(spec.name, values).values()
    return pa.Table.from_arrays(columns, schema=_schema(layout, columns))


def _constant(value: str, total: int) -> pa.Array:
    """``total`` rows of one text value: a one-entry dictionary and zero indices."""
    return pa.DictionaryArray.from_arrays(_zeros(total), pa.array([value], pa.string()), safe=False)


def _rows_of(store: np.ndarray, total: int) -> list[pa.Array]:
    """The first ``total`` rows of each column of a ``[k, capacity]`` store, as Arrow."""
    dtype = store.dtype
    if dtype.kind not in "iuf" or not dtype.isnative:
        return [_arrow(column) for column in store[:, :total]]
    kind = _numeric_type(dtype)
    whole = pa.py_buffer(store)  # one buffer, sliced per column: no copy, no checks
    stride, size = store.shape[1] * dtype.itemsize, total * dtype.itemsize
    return [
        pa.Array.from_buffers(kind, total, [None, whole.slice(j * stride, size)])
        for j in range(store.shape[0])
    ]


_schemas: dict[tuple[Any, ...], pa.Schema] = {}


def _schema(layout: Layout, columns: list[pa.Array]) -> pa.Schema:
    """The schema of a piece: metadata, then the layout's columns (cached per layout and
    column types: an object column's type depends on what it holds)."""
    key = (layout, *[c.type for c in columns[len(_META) :]])
    schema = _schemas.get(key)
    if schema is None:
        fields = list(_META)
        at = len(_META)
        for spec in layout.fields:
            nullable = spec.dtype.kind not in _NON_NULL_KINDS
            names = spec.columns if len(spec.trailing) == 1 else (spec.name,)
            for name in names:
                fields.append(pa.field(name, columns[at].type, nullable))
                at += 1
        if len(_schemas) > 4096:
            _schemas.clear()
        schema = _schemas[key] = pa.schema(fields)
    return schema


_META = (
    pa.field("request_id", _TEXT, False),
    pa.field("row", pa.int32(), False),
    pa.field("deployment", _TEXT, False),
    pa.field("model", _TEXT),
    pa.field("version", _TEXT),
    pa.field("time_ms", pa.int64(), False),
    pa.field("latency_ms", pa.float64(), False),
    pa.field("status", pa.int16(), False),
    pa.field("error", pa.string()),
    pa.field("sampled", pa.bool_(), False),
)


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


_NUMERIC: dict[np.dtype[Any], pa.DataType] = {}


def _numeric_type(dtype: np.dtype[Any]) -> pa.DataType:
    kind = _NUMERIC.get(dtype)
    if kind is None:
        kind = _NUMERIC[dtype] = pa.from_numpy_dtype(dtype)
    return kind


def _arrow(values: np.ndarray) -> pa.Array:
    """One 1-D numpy array as Arrow (a contiguous numeric one without a copy); object
    arrays of mixed types become text."""
    dtype = values.dtype
    if dtype.kind in "iuf" and dtype.isnative and values.flags.c_contiguous:
        # wrapping the buffer: a few us, where pa.array's checks cost ~10-200 us a column
        kind = _numeric_type(dtype)
        return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])
    if dtype.kind != "O":
        return pa.array(values)
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = [
            None if v is None else v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in values.tolist()
        ]
        return pa.array(text, pa.string())
