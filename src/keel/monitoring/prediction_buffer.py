"""The prediction log's buffer: requests' arrays copied into reused chunks.

A request's inputs and outputs are described (their names, dtypes and shapes: its
*layout*) and copied into the open :class:`Chunk` of its deployment and layout when the
log takes it in (``keel.monitoring.prediction_intake``): a set of preallocated arrays,
one per field. A 1-D field's store is ``[capacity, ...]``; a 2-D ``[rows, k]`` block's
(a request's input columns, ``predict_proba``'s classes) is kept column by column,
``[k, capacity]``, so the writer hands each column to Arrow as it is, without a copy
(``keel.monitoring.prediction_rows``). The take-in pays the transpose instead, while the
request's block is still in the cache: a 100-row request of 30 columns cost ~1.5 us more
to copy so, where transposing a cold 16,384-row chunk at the flush into a new array cost
~3 ms (22 ms per 100,000 rows, mostly page faults on the new array's memory: 2026-12-02).
The request's own arrays are then free to go. A written chunk goes back to its layout's
pool and is reused, so a steady load touches the same memory again instead of faulting
in fresh pages every flush (what keeping every request's arrays alive until the flush
cost: 1.5-3.5 minor page faults and ~100 us of CPU per 100-row request).

A chunk holds up to :data:`CHUNK_ROWS` rows or :data:`CHUNK_BYTES` bytes of columns; a
request larger than that gets a chunk of its own size (not pooled). Per-request metadata
(id, time, latency, status, ...) is kept in plain lists, one entry per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CHUNK_BYTES", "CHUNK_ROWS", "Chunk", "Field", "Layout", "describe"]

CHUNK_ROWS = 16_384
CHUNK_BYTES = 4 << 20
# numpy kinds Arrow converts: bool, ints, floats, datetimes, durations, text, bytes, objects
_KINDS = frozenset("biufMmUSO")


@dataclass(frozen=True)
class Field:
    """One array of a layout: the column(s) ``name`` makes (``input.a``, ``output.p``…),
    its dtype and its shape past the rows axis."""

    name: str
    dtype: np.dtype[Any]
    trailing: tuple[int, ...]
    columns: tuple[str, ...] = ()  # a block's (or 2-D array's) column names, in order

    @property
    def by_column(self) -> bool:
        """Whether the field is a ``[rows, k]`` block, stored ``[k, capacity]``."""
        return len(self.trailing) == 1

    @property
    def row_bytes(self) -> int:
        return self.dtype.itemsize * int(np.prod(self.trailing, dtype=np.int64))


@dataclass(frozen=True, eq=False)
class Layout:
    """The fields of a request's inputs (none when unsampled) and outputs (none when it
    failed); requests of one layout share chunks. One object per layout (``describe``
    interns them), compared and hashed by identity: a dict lookup per request."""

    inputs: tuple[Field, ...] | None
    outputs: tuple[Field, ...] | None

    @property
    def fields(self) -> tuple[Field, ...]:
        return (self.inputs or ()) + (self.outputs or ())

    @property
    def capacity(self) -> int:
        """Rows a pooled chunk of this layout holds."""
        row_bytes = sum(f.row_bytes for f in self.fields)
        return max(1, min(CHUNK_ROWS, CHUNK_BYTES // max(row_bytes, 1)))


_layouts: dict[Any, Layout] = {}


def describe(
    rows: int, inputs: Any, names: Any, outputs: Any
) -> tuple[Layout, list[np.ndarray]] | None:
    """A request's layout and its arrays in the layout's field order, or None when an
    array does not hold ``rows`` rows (or names do not match a block's columns, or an
    array is of a dtype Arrow cannot take). It runs once per request, so the usual case
    (one 2-D block with the one tuple of names ``keel serve`` passes, a dict of 1-D
    outputs) is a few tuple and dict operations."""
    key: list[Any] = []
    arrays: list[np.ndarray] = []
    if inputs is None:
        key.append(None)
    elif type(inputs) is np.ndarray:
        shape = inputs.shape
        if len(shape) != 2 or shape[0] != rows or inputs.dtype.kind not in _KINDS:
            return None
        if names is None:
            names = tuple(str(j) for j in range(shape[1]))
        elif type(names) is not tuple:
            try:
                names = tuple(str(n) for n in names)
            except TypeError:
                return None
        if len(names) != shape[1]:
            return None
        key += ("block", inputs.dtype, names)
        arrays.append(inputs)
    elif not _mapping_key(inputs, rows, key, arrays, "input"):
        return None
    if outputs is None:
        key.append(None)
    elif not _mapping_key(outputs, rows, key, arrays, "output"):
        return None
    frozen = tuple(key)
    layout = _layouts.get(frozen)
    if layout is None:
        layout = _layouts[frozen] = _layout_of(inputs, outputs, arrays, names)
        if len(_layouts) > 4096:  # a long-lived server whose callers keep changing columns
            _layouts.clear()
    return layout, arrays


def _mapping_key(
    columns: Any, rows: int, key: list[Any], arrays: list[np.ndarray], prefix: str
) -> bool:
    if type(columns) is not dict and not isinstance(columns, Mapping):
        return False
    key.append(prefix)
    for name, value in columns.items():
        array = value
        if type(array) is not np.ndarray:
            try:
                array = np.asarray(value)
            except (TypeError, ValueError):
                return False
        shape = array.shape
        if not shape or shape[0] != rows or array.dtype.kind not in _KINDS:
            return False
        key += (name, array.dtype, shape[1:])
        arrays.append(array)
    return True


def _layout_of(inputs: Any, outputs: Any, arrays: list[np.ndarray], names: Any) -> Layout:
    in_fields: tuple[Field, ...] | None = None
    at = 0
    if type(inputs) is np.ndarray:
        block = arrays[0]
        columns = tuple(f"input.{n}" for n in names)
        in_fields = (Field("input", block.dtype, block.shape[1:], columns),)
        at = 1
    elif inputs is not None:
        in_fields = tuple(_field(f"input.{name}", arrays[i]) for i, name in enumerate(inputs))
        at = len(in_fields)
    out_fields = None
    if outputs is not None:
        out_fields = tuple(
            _field(f"output.{name}", arrays[at + i]) for i, name in enumerate(outputs)
        )
    return Layout(in_fields, out_fields)


def _field(name: str, array: np.ndarray) -> Field:
    trailing = array.shape[1:]
    columns = tuple(f"{name}.{j}" for j in range(trailing[0])) if len(trailing) == 1 else ()
    return Field(name, array.dtype, trailing, columns)


class Chunk:
    """Preallocated columns for up to ``capacity`` rows of one deployment and layout,
    filled request by request (module doc)."""

    def __init__(self, deployment: str, layout: Layout, capacity: int) -> None:
        self.deployment = deployment
        self.layout = layout
        self.capacity = capacity
        self.pooled = capacity == layout.capacity
        # a [rows, k] block's store is [k, capacity], each column contiguous (module doc)
        self.stores = [
            np.empty((f.trailing[0], capacity) if f.by_column else (capacity, *f.trailing), f.dtype)
            for f in layout.fields
        ]
        self.rows = 0  # rows filled
        self.request_ids: list[str] = []
        self.models: list[str | None] = []
        self.versions: list[str | None] = []
        self.times: list[int] = []
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.errors: list[str | None] = []
        self.counts: list[int] = []  # rows per request

    @property
    def records(self) -> int:
        return len(self.counts)

    def room(self) -> int:
        return self.capacity - self.rows

    def add(
        self,
        arrays: list[np.ndarray],
        rows: int,
        request_id: str,
        model: str | None,
        version: str | None,
        time_ms: int,
        latency_ms: float,
        status: int,
        error: str | None,
    ) -> None:
        """Copy one request's arrays (``describe``'s order) and metadata in; the caller
        checked that ``rows`` fit."""
        start = self.rows
        end = start + rows
        for store, array, field in zip(self.stores, arrays, self.layout.fields, strict=True):
            if field.by_column:
                store[:, start:end] = array.T
            else:
                store[start:end] = array
        self.rows = end
        self.request_ids.append(request_id)
        self.models.append(model)
        self.versions.append(version)
        self.times.append(time_ms)
        self.latencies.append(latency_ms)
        self.statuses.append(status)
        self.errors.append(error)
        self.counts.append(rows)

    def reset(self) -> None:
        """Empty the chunk for reuse (object columns let go of their values)."""
        for store, field in zip(self.stores, self.layout.fields, strict=True):
            if field.dtype.kind == "O":
                store[...] = None
        self.rows = 0
        for values in (
            self.request_ids,
            self.models,
            self.versions,
            self.times,
            self.latencies,
            self.statuses,
            self.errors,
            self.counts,
        ):
            values.clear()
