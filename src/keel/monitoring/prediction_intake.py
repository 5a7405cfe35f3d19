"""The prediction log's request path: served requests taken into its buffer's chunks.

:class:`RequestBuffer` is the part of :class:`~keel.monitoring.prediction_log.
PredictionLogger` a serving thread calls. :meth:`~RequestBuffer.record` checks one request
and copies its arrays into the open chunk of its deployment and layout
(``keel.monitoring.prediction_buffer``), under a lock: no I/O, no Arrow conversion.
:meth:`~RequestBuffer.submit`, the serving path's call, only queues the request; the
queue is taken in :data:`PENDING_RECORDS` requests at a time, by runs of one layout
(``RequestBuffer._take_in``), because a server's caches are cold each time a request
reaches the log and stay warm through a run of takes (a served 1-row request's CPU over
a server without the log fell from +24-40 to +16-21 us). The writer
(``keel.monitoring.prediction_log``) takes the chunks at each flush and gives them back
to the pool once written.

The buffer never holds more than ``max_rows`` rows or ``max_records`` requests: a request
that would pass them is dropped and counted. One whose arrays do not hold its rows, or
that names no valid deployment or a time outside years 1970-9999, or whose fields are of
the wrong types, is left out and counted (``invalid``); :meth:`~RequestBuffer.record`
raises for wrong types, the queue never does.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from keel.errors import InvalidInput
from keel.monitoring.prediction_buffer import Chunk, Layout, describe

__all__ = ["MAX_OPEN_CHUNKS", "PENDING_RECORDS", "PENDING_ROWS", "RequestBuffer"]

PENDING_RECORDS = 64  # submitted requests taken in at once (submit)
PENDING_ROWS = 16_384  # ... or as soon as they hold this many rows
MAX_OPEN_CHUNKS = 64  # (deployment, layout) pairs filling at once; past it the oldest is sealed
_FEW_ROWS = 8  # a run's requests of at most this many rows each are joined before the transpose
_LAST_MS = 253402300800000  # 10000-01-01: past it, no hour has a name


def _right_types(deployment: Any, request_id: Any, time_ms: Any, status: Any, rows: Any) -> bool:
    return (
        type(rows) is int
        and type(status) is int
        and type(time_ms) is int
        and isinstance(request_id, str)
        and isinstance(deployment, str)
    )


def _same_outputs(
    outputs: dict[str, Any], ref: tuple[tuple[str, Any, tuple[int, ...]], ...], rows: int
) -> bool:
    """Whether ``outputs`` has the arrays of ``ref`` (name, dtype object, trailing shape)
    for ``rows`` rows (its length was compared already)."""
    for name, dtype, trailing in ref:
        array = outputs.get(name)
        if type(array) is not np.ndarray or array.dtype is not dtype:
            return False
        shape = array.shape
        if not shape or shape[0] != rows or shape[1:] != trailing:
            return False
    return True


def _runs_from(request: tuple[Any, ...]) -> bool:
    """Whether an admitted request can start a run (``RequestBuffer._take_in``): served,
    sampled, one 2-D input block with a tuple of names (or none), outputs all arrays."""
    status, rows, inputs, names, outputs, sampled = (
        request[6],
        request[7],
        request[9],
        request[10],
        request[11],
        request[12],
    )
    return (
        status == 200
        and type(rows) is int
        and rows > 0
        and sampled is True
        and type(inputs) is np.ndarray
        and inputs.ndim == 2
        and (names is None or type(names) is tuple)
        and type(outputs) is dict
        and all(type(a) is np.ndarray for a in outputs.values())
    )


def _join_by_column(blocks: Sequence[np.ndarray], out: np.ndarray, few: bool) -> None:
    """Copy ``[rows, k]`` blocks, one after the other, into ``out`` (``[k, total]``).

    A transposed copy per block costs a strided loop's setup per block: cheap next to
    100 rows (1.4 us a 30-column block against 2.8 joining them first and transposing
    once), dear next to one (0.31 against 0.15 us), so blocks of ``few`` rows are joined
    row by row first (2026-12-02, 64 blocks a run; the row-major copy of before cost
    0.12 and 0.78 us)."""
    if few:
        out[...] = _joined(blocks).reshape(-1, out.shape[0]).T
    else:
        np.concatenate([block.T for block in blocks], axis=1, out=out)


def _joined(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The arrays (all of one dtype) end to end, as one flat array.

    Their bytes are joined when they are contiguous and hold no objects: numpy's
    concatenate checks and casts array by array, ~10x the copy for a 1-row request (64
    1-row blocks of 30 floats and their outputs: 0.19 against 0.08 us a request)."""
    dtype = arrays[0].dtype
    if not dtype.hasobject:
        try:
            return np.frombuffer(b"".join(arrays), dtype)  # type: ignore[arg-type]
        except TypeError:  # a block that is a strided view: not one buffer
            pass
    return np.concatenate(arrays, axis=None)


@lru_cache(maxsize=1024)
def _valid_name(name: str) -> bool:
    # the name becomes a path segment: "../x" or "a/b" must never reach the store
    from keel.deploy.entities import check_deployment_name

    try:
        check_deployment_name(name)
    except InvalidInput:
        return False
    return True


class RequestBuffer:
    """The open and sealed chunks of served requests, their counts and the queue of
    submitted ones (module doc); thread-safe."""

    def __init__(self, *, sample_rate: float, max_rows: int, max_records: int) -> None:
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float):
            raise InvalidInput(f"sample_rate is a number from 0 to 1, not {sample_rate!r:.40}")
        if not 0.0 <= sample_rate <= 1.0:
            raise InvalidInput(f"sample_rate must be from 0 to 1, not {sample_rate}")
        for name, value in (("max_rows", max_rows), ("max_records", max_records)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive integer, not {value!r:.40}")
        self.sample_rate = float(sample_rate)
        self.max_rows = max_rows
        self.max_records = max_records
        self.dropped = 0  # records refused because the buffer was full
        self.recorded = 0  # records accepted into the buffer
        self.invalid = 0  # records left out: bad arrays, deployment name, time or types
        self._open: dict[tuple[str, Layout], Chunk] = {}  # the chunk each pair fills
        self._sealed: list[Chunk] = []  # full chunks waiting for the writer
        self._pool: dict[Layout, list[Chunk]] = {}  # written chunks, reset, for reuse
        self._rows = 0  # rows and records waiting (open, sealed, and the writer's retries)
        self._records = 0
        self._lock = threading.Lock()  # guards the buffer and its counts: appends vs swap
        self._closed = False
        self._random = random.random
        self._pending: deque[tuple[Any, ...]] = deque()  # submitted, not yet taken in
        self._pending_rows = 0

    def sample(self) -> bool:
        """Whether this request's inputs are to be recorded (``sample_rate`` of them)."""
        rate = self.sample_rate
        return rate >= 1.0 or (rate > 0.0 and self._random() < rate)

    def record(
        self,
        *,
        deployment: str,
        model: str | None,
        version: str | None,
        request_id: str,
        time_ms: int,
        latency_ms: float,
        status: int,
        rows: int,
        error: str | None = None,
        inputs: Mapping[str, np.ndarray] | np.ndarray | None = None,
        input_names: Sequence[str] | None = None,
        outputs: Mapping[str, np.ndarray] | None = None,
        sampled: bool | None = None,
    ) -> bool:
        """Buffer one request; return False when it was not taken (buffer full, logger
        closed, or the record left out as invalid: see the module).

        ``rows`` is the number of predicted rows (1 for a failed request); ``inputs`` and
        ``outputs`` are copied before this returns, so the caller may reuse them (the
        serving path queues requests with :meth:`submit` instead).
        ``sampled`` (default: :meth:`sample`) says whether to keep ``inputs``.
        """
        if not _right_types(deployment, request_id, time_ms, status, rows):
            raise InvalidInput(
                "record takes deployment and request_id as str, time_ms, status and rows as "
                f"int; got {type(deployment).__name__}, {type(request_id).__name__}, "
                f"{type(time_ms).__name__}, {type(status).__name__}, {type(rows).__name__}"
            )
        if sampled is None:
            sampled = self.sample()
        with self._lock:
            chunk = self._admit(
                deployment, model, version, request_id, time_ms, latency_ms, status, rows,
                error, inputs, input_names, outputs, sampled,
            )  # fmt: skip
        self._admitted()
        return chunk is not None

    def submit(
        self,
        deployment: str,
        model: str | None,
        version: str | None,
        request_id: str,
        time_ms: int,
        latency_ms: float,
        status: int,
        rows: int,
        error: str | None,
        inputs: Mapping[str, np.ndarray] | np.ndarray | None,
        input_names: Sequence[str] | None,
        outputs: Mapping[str, np.ndarray] | None,
        sampled: bool,
    ) -> None:
        """Queue one served request for :meth:`record`'s work, done for many at once: the
        serving path's call (positional arguments, no return value).

        The queued requests are taken in (checked, copied, counted as :meth:`record` does)
        once :data:`PENDING_RECORDS` requests or :data:`PENDING_ROWS` rows wait, and at
        every flush: ~2x cheaper than one :meth:`record` per request, because a server's
        caches are cold when each request gets to it and warm for the second of a run of
        takes. Unlike :meth:`record`, the arrays are kept until then, not copied at once:
        the caller must not change them (a served request's arrays are its own).
        """
        pending = self._pending
        pending.append(
            (deployment, model, version, request_id, time_ms, latency_ms, status, rows,
             error, inputs, input_names, outputs, sampled)
        )  # fmt: skip
        self._pending_rows += rows if type(rows) is int else 1
        if len(pending) >= PENDING_RECORDS or self._pending_rows >= PENDING_ROWS:
            self.take_pending()

    def take_pending(self) -> int:
        """Take the requests :meth:`submit` queued into the buffer now; return how many."""
        pending = self._pending
        if not pending:
            return 0
        with self._lock:  # the writer's flush may take them at the same time
            self._pending_rows = 0
            count = len(pending)
            popleft = pending.popleft  # not a swap: a submit may be appending meanwhile
            self._take_in([popleft() for _ in range(count)])
        self._admitted()
        return count

    def _take_in(self, requests: list[tuple[Any, ...]]) -> None:
        """Admit queued requests as :meth:`_admit` would one by one (under the lock).

        A run of requests like the one before (same deployment and names object, input
        block and outputs of the same dtypes and widths, served, sampled) is checked by
        identity and copied with one concatenation per field, not ``describe`` (a hashed
        key of dtypes and names) and a slice assignment per array: a 1-row request's
        submit and take-in fell from ~34,100 to ~12,200 instructions (callgrind)."""
        chunk: Chunk | None = None  # the run's chunk, when the last request set one up
        run: list[tuple[Any, ...]] = []
        run_rows = room = records_left = 0
        ref_dep = ref_names = ref_dtype = None
        ref_k = 0
        ref_outs: tuple[tuple[str, Any, tuple[int, ...]], ...] = ()
        ndarray = np.ndarray
        for request in requests:
            (deployment, _, _, request_id, time_ms, _, status, rows, _, inputs, names,
             outputs, sampled) = request  # fmt: skip
            if (
                chunk is not None
                and deployment is ref_dep
                and names is ref_names
                and type(inputs) is ndarray
                and type(rows) is int
                and 0 < rows <= room
                and len(run) < records_left
                and status == 200
                and type(status) is int
                and sampled is True
                and inputs.dtype is ref_dtype
                and inputs.shape == (rows, ref_k)
                and type(request_id) is str
                and type(time_ms) is int
                and 0 <= time_ms < _LAST_MS
                and type(outputs) is dict
                and len(outputs) == len(ref_outs)
                and _same_outputs(outputs, ref_outs, rows)
            ):
                run.append(request)
                run_rows += rows
                room -= rows
                continue
            if chunk is not None and run:
                self._copy_run(chunk, run, run_rows, ref_outs)
                run, run_rows = [], 0
            chunk = self._admit(*request)
            if chunk is None or not _runs_from(request):
                chunk = None
                continue
            ref_dep, ref_names, ref_dtype, ref_k = deployment, names, inputs.dtype, inputs.shape[1]
            # describe's order is the layout's: the outputs' stores follow it
            ref_outs = tuple((n, a.dtype, a.shape[1:]) for n, a in outputs.items())
            room = min(chunk.capacity - chunk.rows, self.max_rows - self._rows)
            records_left = self.max_records - self._records
        if chunk is not None and run:
            self._copy_run(chunk, run, run_rows, ref_outs)

    def _admit(
        self,
        deployment: str,
        model: str | None,
        version: str | None,
        request_id: str,
        time_ms: int,
        latency_ms: float,
        status: int,
        rows: int,
        error: str | None,
        inputs: Mapping[str, np.ndarray] | np.ndarray | None,
        input_names: Sequence[str] | None,
        outputs: Mapping[str, np.ndarray] | None,
        sampled: bool,
    ) -> Chunk | None:
        """Check one request and copy it into its chunk (returned), or count it invalid or
        dropped (None); never raises for its values. Called under the lock."""
        if not _right_types(deployment, request_id, time_ms, status, rows):
            self.invalid += 1
            return None
        if status != 200 or rows < 1:
            rows, outputs = 1, None  # a failed request is one row, no outputs
        described = describe(rows, inputs if sampled else None, input_names, outputs)
        if described is None or not 0 <= time_ms < _LAST_MS or not _valid_name(deployment):
            self.invalid += 1
            return None
        if self._closed or self._rows + rows > self.max_rows or self._records >= self.max_records:
            self.dropped += 1
            return None
        layout, arrays = described
        chunk = self._open.get((deployment, layout))
        if chunk is None or chunk.capacity - chunk.rows < rows:
            chunk = self._new_chunk(deployment, layout, rows)
        chunk.add(arrays, rows, request_id, model, version, time_ms, latency_ms, status, error)
        self._rows += rows
        self._records += 1
        self.recorded += 1
        return chunk

    def _copy_run(
        self,
        chunk: Chunk,
        run: list[tuple[Any, ...]],
        rows: int,
        outs: tuple[tuple[str, Any, tuple[int, ...]], ...],
    ) -> None:
        """Copy a run of checked requests (``_take_in``) into ``chunk`` and count them."""
        # one C-level transpose of the run's tuples, in submit's field order
        (_, models, versions, ids, times, latencies, statuses, counts, errors, inputs, _,
         outputs, _) = zip(*run, strict=True)  # fmt: skip
        start = chunk.rows
        end = start + rows
        stores = chunk.stores
        few = rows <= _FEW_ROWS * len(run)
        _join_by_column(inputs, stores[0][:, start:end], few)
        for j, (name, _, trailing) in enumerate(outs, start=1):
            values = [o[name] for o in outputs]
            if len(trailing) == 1:  # a [rows, k] output, stored by column too
                _join_by_column(values, stores[j][:, start:end], few)
            elif few and not trailing:
                stores[j][start:end] = _joined(values)
            else:
                np.concatenate(values, out=stores[j][start:end])
        chunk.rows = end
        chunk.request_ids += ids
        chunk.models += models
        chunk.versions += versions
        chunk.times += times
        chunk.latencies += latencies
        chunk.statuses += statuses
        chunk.errors += errors
        chunk.counts += counts
        self._rows += rows
        self._records += len(run)
        self.recorded += len(run)

    def _admitted(self) -> None:
        """Called after records were taken in, outside the lock (the logger starts and
        wakes its writer here)."""

    def _new_chunk(self, deployment: str, layout: Layout, rows: int) -> Chunk:
        """A chunk with room for ``rows`` (pooled if one is free), open for the pair; the
        pair's full one is sealed for the writer. Called under the lock."""
        key = (deployment, layout)
        full = self._open.pop(key, None)
        if full is not None and full.records:
            self._sealed.append(full)
        elif len(self._open) >= MAX_OPEN_CHUNKS:  # many pairs at once: seal the oldest
            oldest = self._open.pop(next(iter(self._open)))
            if oldest.records:
                self._sealed.append(oldest)
        free = self._pool.get(layout)
        if free and rows <= layout.capacity:
            chunk = free.pop()
            chunk.deployment = deployment
        else:  # a request larger than a chunk gets one of its own size, not pooled
            chunk = Chunk(deployment, layout, max(rows, layout.capacity))
        self._open[key] = chunk
        return chunk

    @property
    def buffered_rows(self) -> int:
        """Rows waiting in the buffer for the next flush (queued ones not yet taken in)."""
        return self._rows

    def _release(self, chunks: list[Chunk]) -> None:
        """Put written chunks back in their layout's pool: as many as this flush wrote,
        plus two (what the next flush will need, and the ones filling meanwhile)."""
        by_layout: dict[Layout, list[Chunk]] = {}
        for chunk in chunks:
            if chunk.pooled:
                by_layout.setdefault(chunk.layout, []).append(chunk)
        for chunk in chunks:
            chunk.reset()
        with self._lock:
            if self._closed:
                self._pool.clear()
                return
            for layout, free in by_layout.items():
                pool = self._pool.setdefault(layout, [])
                pool += free[: max(0, len(free) + 2 - len(pool))]
            if len(self._pool) > 2 * MAX_OPEN_CHUNKS:  # layouts come and go: forget them
                self._pool = dict(list(self._pool.items())[-MAX_OPEN_CHUNKS:])
