"""Buffered metric logging: a training loop appends, a background thread writes batches.

``add`` is a deque append (no lock, no I/O). The flusher writes whatever has accumulated
every ``flush_interval`` seconds, as soon as ``flush_at`` points are waiting, when the run
ends and at interpreter exit. The buffer is bounded: past ``max_size`` waiting points the
producer blocks until the flusher catches up, so memory never grows without limit. A
batch that fails to write is kept and retried; the error reaches the caller at ``close``.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from keel.errors import KeelError, StoreUnavailable
from keel.tracking.store import MetricRow

__all__ = ["MetricBuffer", "flush_all_buffers"]

_live: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


class MetricBuffer:
    """A bounded queue of metric points for one run, drained by a daemon thread."""

    def __init__(
        self,
        write: Callable[[list[MetricRow]], None],
        *,
        flush_interval: float = 1.0,
        max_size: int = 200_000,
        flush_at: int = 20_000,
        heartbeat: Callable[[], None] | None = None,
        heartbeat_interval: float = 10.0,
        name: str = "keel-metrics",
    ) -> None:
        self._write = write
        self._flush_interval = flush_interval
        self._max_size = max_size
        self._flush_at = min(flush_at, max_size)
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._queue: deque[MetricRow] = deque()
        self._retry: list[MetricRow] = []
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _live.add(self)

    def add(self, row: MetricRow) -> None:
        """Queue one point; blocks only while the buffer is full."""
        queue = self._queue
        queue.append(row)
        size = len(queue)
        if size >= self._flush_at:
            self._wake.set()
            if size >= self._max_size:
                self._wait_for_room()

    def extend(self, rows: list[MetricRow]) -> None:
        """Queue several points at once."""
        self._queue.extend(rows)
        if len(self._queue) >= self._flush_at:
            self._wake.set()
            if len(self._queue) >= self._max_size:
                self._wait_for_room()

    def _wait_for_room(self) -> None:
        if self._closed:
            return
        with self._drained:
            while len(self._queue) >= self._max_size and self._thread.is_alive():
                self._wake.set()
                self._drained.wait(0.5)

    @property
    def pending(self) -> int:
        """Points not yet written."""
        return len(self._queue) + len(self._retry)

    def flush(self) -> None:
        """Write every queued point now; raise the store's error if that fails."""
        self._flush_once()
        if self._retry:
            raise self._error or StoreUnavailable("metrics could not be written")

    def _flush_once(self) -> None:
        with self._write_lock:
            queue = self._queue
            batch = self._retry
            self._retry = []
            popleft = queue.popleft
            batch.extend(popleft() for _ in range(len(queue)))
            if not batch:
                return
            try:
                self._write(batch)
                self._error = None
            except (KeelError, OSError) as exc:
                # Keep the points: they are retried on the next tick and at close.
                self._retry = batch
                self._error = exc
        with self._drained:
            self._drained.notify_all()

    def _run(self) -> None:
        last_beat = time.monotonic()
        while not self._closed:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._flush_once()
            now = time.monotonic()
            if self._heartbeat is not None and now - last_beat >= self._heartbeat_interval:
                last_beat = now
                try:
                    self._heartbeat()
                except (KeelError, OSError) as exc:
                    self._error = exc

    def close(self) -> None:
        """Stop the thread after a final flush; raise if points could not be written."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
        _live.discard(self)
        self._flush_once()
        if self._retry:
            lost = len(self._retry)
            raise StoreUnavailable(
                f"{lost} metric points could not be written: {self._error}"
            ) from self._error


def flush_all_buffers() -> None:
    """Flush every live buffer (called at interpreter exit)."""
    for buffer in list(_live):
        buffer._flush_once()
