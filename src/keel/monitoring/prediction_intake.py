"""The prediction log's request path: served requests taken into its buffer's chunks.

:class:`RequestBuffer` is the part of :class:`~keel.monitoring.prediction_log.
PredictionLogger` a serving thread calls. :meth:`~RequestBuffer.record` checks one request
and copies its arrays into the open chunk of its deployment and layout
(``keel.monitoring.prediction_buffer``), under a lock: no I/O, no Arrow conversion.
:meth:`~RequestBuffer.submit`, the serving path's call, only queues the request: the
queue is taken in :data:`PENDING_RECORDS` requests at a time, because a server's caches
are cold each time a request reaches the log and stay warm through a run of takes: a
1-row request's share fell from ~21 to ~8 us in a harness that evicts the caches between
requests, and a served request's main-thread CPU over a server without the log from
+24-40 to +16-21 us. The writer (``keel.monitoring.prediction_log``) takes the chunks
at each flush and gives them back to the pool once written.

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
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.prediction_buffer import Chunk, Layout, describe

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MAX_OPEN_CHUNKS", "PENDING_RECORDS", "PENDING_ROWS", "RequestBuffer"]

PENDING_RECORDS = 64  # submitted requests taken in at once (submit)
PENDING_ROWS = 16_384  # ... or as soon as they hold this many rows
MAX_OPEN_CHUNKS = 64  # (deployment, layout) pairs filling at once; past it the oldest is sealed
_LAST_MS = 253402300800000  # 10000-01-01: past it, no hour has a name


def _right_types(deployment: Any, request_id: Any, time_ms: Any, status: Any, rows: Any) -> bool:
    return (
        type(rows) is int
        and type(status) is int
        and type(time_ms) is int
        and isinstance(request_id, str)
        and isinstance(deployment, str)
    )


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
            taken = self._admit(
                deployment, model, version, request_id, time_ms, latency_ms, status, rows,
                error, inputs, input_names, outputs, sampled,
            )  # fmt: skip
        self._admitted()
        return taken

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
        admit = self._admit
        with self._lock:  # the writer's flush may take them at the same time
            self._pending_rows = 0
            count = len(pending)
            for _ in range(count):
                admit(*pending.popleft())
        self._admitted()
        return count

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
    ) -> bool:
        """Check one request and copy it into its chunk, or count it invalid or dropped;
        never raises for its values. Called under the lock."""
        if not _right_types(deployment, request_id, time_ms, status, rows):
            self.invalid += 1
            return False
        if status != 200 or rows < 1:
            rows, outputs = 1, None  # a failed request is one row, no outputs
        described = describe(rows, inputs if sampled else None, input_names, outputs)
        if described is None or not 0 <= time_ms < _LAST_MS or not _valid_name(deployment):
            self.invalid += 1
            return False
        if self._closed or self._rows + rows > self.max_rows or self._records >= self.max_records:
            self.dropped += 1
            return False
        layout, arrays = described
        chunk = self._open.get((deployment, layout))
        if chunk is None or chunk.capacity - chunk.rows < rows:
            chunk = self._new_chunk(deployment, layout, rows)
        chunk.add(arrays, rows, request_id, model, version, time_ms, latency_ms, status, error)
        self._rows += rows
        self._records += 1
        self.recorded += 1
        return True

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
