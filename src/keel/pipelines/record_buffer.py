"""Step records buffered and written in batches: one ``write_runs`` call per flush.

A pipeline's step runs are small records written often — a start and an end per step.
Written one by one they cost more than trivial steps themselves, so each start and end is
added here instead, merged per run (a step that starts and ends between two flushes is
written once, complete), and the buffer is written in one ``TrackingStore.write_runs``
call (one transaction) at most ``FLUSH_DELAY`` seconds after its first record came in —
so a running step shows as running in ``keel pipeline show`` within that delay — or at
once when the owner asks (``flush``: heartbeats, the end of the pipeline run).

The background writer is a thread that lives only while records wait: the first record
added starts it, and it exits once it has written the buffer empty. It runs in the
context of the thread that started it (so its audit entries name the same actor). A
failed background write keeps its records; the next record added is then written by the
caller itself, so the store's error surfaces in the pipeline's own thread.
"""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING

from keel.tracking.run_writes import MAX_RUN_WRITES, RunWrite

if TYPE_CHECKING:
    from keel.tracking.store import TrackingStore

__all__ = ["FLUSH_DELAY", "RecordBuffer"]

FLUSH_DELAY = 0.1  # seconds a record may wait: well inside the 0.2 s a viewer may wait


class RecordBuffer:
    """Run writes waiting to be written together (thread-safe)."""

    def __init__(self, tracking: TrackingStore, *, delay: float | None = None) -> None:
        self.tracking = tracking
        self.delay = FLUSH_DELAY if delay is None else delay
        self._pending: dict[str, RunWrite] = {}  # by run id, in the order runs came in
        self._lock = threading.Lock()  # guards _pending, _thread and _failed
        self._writing = threading.Lock()  # one write at a time, so batches keep their order
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None  # the last background write's error
        self._wake = threading.Event()

    def add(self, write: RunWrite) -> None:
        """Buffer ``write``, merged into what waits for its run; written soon."""
        with self._lock:
            earlier = self._pending.get(write.run_id)
            self._pending[write.run_id] = write if earlier is None else earlier.then(write)
            now = self._failed is not None or len(self._pending) >= MAX_RUN_WRITES
            thread = None
            if not now and self._thread is None:
                context = contextvars.copy_context()
                thread = self._thread = threading.Thread(
                    target=context.run, args=(self._run,), name="keel-records", daemon=True
                )
        if thread is not None:
            thread.start()
        if now:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered now; the store's error is raised (the records stay)."""
        with self._writing:
            with self._lock:
                batch, self._pending = list(self._pending.values()), {}
            written = 0
            try:
                while written < len(batch):
                    chunk = batch[written : written + MAX_RUN_WRITES]
                    self.tracking.write_runs(chunk)
                    written += len(chunk)
            except BaseException:
                self._restore(batch[written:])
                raise
            with self._lock:
                self._failed = None

    def close(self) -> None:
        """Write everything buffered, then stop the background writer."""
        try:
            self.flush()
        finally:
            with self._lock:
                thread = self._thread
            if thread is not None:
                self._wake.set()
                thread.join(5)
                self._wake.clear()

    def _restore(self, unwritten: list[RunWrite]) -> None:
        # Back in front of what came in meanwhile, each run's writes merged in order.
        with self._lock:
            merged = {w.run_id: w for w in unwritten}
            for run_id, later in self._pending.items():
                earlier = merged.get(run_id)
                merged[run_id] = later if earlier is None else earlier.then(later)
            self._pending = merged

    def _run(self) -> None:
        while True:
            self._wake.wait(self.delay)
            try:
                self.flush()
            except BaseException as exc:  # noqa: BLE001 - kept, and raised by the next add
                with self._lock:
                    self._failed, self._thread = exc, None
                return
            with self._lock:
                if not self._pending or self._wake.is_set():
                    self._thread = None
                    return
