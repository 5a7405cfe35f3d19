"""The prediction log's writer: served requests recorded off the request path, in batches.

A server hands :meth:`PredictionLogger.submit` each answered (or failed) request with its
decoded numpy inputs and outputs; the request path (``keel.monitoring.prediction_intake``)
copies their arrays into reused, preallocated chunks (``keel.monitoring.prediction_buffer``)
many requests at a time: no I/O, no Arrow conversion. A background thread wakes every
``flush_interval`` seconds (or as soon as ``flush_rows`` rows are waiting), turns the
chunks into Arrow tables without copying their columns and writes one Parquet segment per
(deployment, UTC hour) to the artifact store (``keel.monitoring.prediction_store``); the
written chunks are then reused.

The buffer never grows past ``max_rows`` rows or ``max_records`` requests: a request
that would is dropped and counted (``keel_prediction_log_dropped_total``) rather than
making serving wait; an invalid one is left out and counted (``invalid``). A segment the
store refuses (unreachable S3...) is kept and retried at the next flush, within the same
bounds. :meth:`PredictionLogger.close` flushes what is left. ``sample_rate`` decides per
request whether its inputs are kept (outputs and metadata always are);
``keel.monitoring.prediction_serving`` is the serving side's one call per request.

Row layout (one row per predicted row; see ``keel.monitoring.prediction_rows``):
request_id, row, deployment, model, version, time_ms, latency_ms, status, error,
sampled, ``input.<column>``…, ``output.<name>[.<j>]``….
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.prediction_buffer import Chunk, describe
from keel.monitoring.prediction_intake import RequestBuffer

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.config import KeelSettings
    from keel.monitoring.prediction_store import LogRoot
    from keel.stores import Stores

__all__ = ["PredictionLogger", "logger_from_settings"]

DEFAULT_FLUSH_INTERVAL = 5.0
DEFAULT_FLUSH_ROWS = 100_000
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_RECORDS = 200_000
_log = logging.getLogger(__name__)


class _Retry:
    """A segment the store refused, kept (as its tables) for the next flush."""

    __slots__ = ("key", "records", "rows", "tables")

    def __init__(self, key: tuple[str, str], tables: list[pa.Table], records: int, rows: int):
        self.key, self.tables, self.records, self.rows = key, tables, records, rows


class PredictionLogger(RequestBuffer):
    """Buffers served requests and writes them as Parquet segments from a thread (module doc).

    Construct it (no I/O, no thread), then call :meth:`submit` (or :meth:`record`) from the
    serving path (``keel.monitoring.prediction_intake``); the writer thread starts with
    the first request taken in. Always :meth:`close` it.
    """

    def __init__(
        self,
        root: LogRoot,
        *,
        sample_rate: float = 1.0,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        flush_rows: int = DEFAULT_FLUSH_ROWS,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        super().__init__(sample_rate=sample_rate, max_rows=max_rows, max_records=max_records)
        if isinstance(flush_rows, bool) or not isinstance(flush_rows, int) or flush_rows < 1:
            raise InvalidInput(f"flush_rows must be a positive integer, not {flush_rows!r:.40}")
        if (
            isinstance(flush_interval, bool)
            or not isinstance(flush_interval, int | float)
            or not 0 < flush_interval <= 3600
        ):
            raise InvalidInput(f"flush_interval is seconds in (0, 3600], not {flush_interval!r}")
        self.root = root
        self.flush_interval = float(flush_interval)
        self.flush_rows = flush_rows
        self.written_rows = 0  # rows written to segments
        self.segments = 0  # segments written
        self.write_errors = 0  # segment writes that failed (retried, or lost and counted)
        self.lost = 0  # records lost: failed to convert, or to write with no room to retry
        self._retry: list[_Retry] = []  # refused segments waiting for the next flush
        self._write_lock = threading.Lock()  # one flush at a time (thread vs flush/close)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _admitted(self) -> None:
        """After records were taken in: start the writer, wake it if enough waits."""
        if self._thread is None:
            self._start()
        if self._rows >= self.flush_rows:
            self._wake.set()

    def warm(self) -> None:
        """Load what the writer needs (pyarrow, Parquet: ~0.5 s of CPU under the import
        lock, and what pyarrow loads on its first conversion: pandas, ~1 s), so the first
        flush does not do it while requests are being served: one request converted and
        encoded in memory, nothing written."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.parquet as pq

        from keel.monitoring.prediction_rows import segments_of

        described = describe(1, np.zeros((1, 1)), ("x",), {"predict": np.zeros(1)})
        if described is None:  # cannot happen: a valid request of one row
            return
        chunk = Chunk("warm", described[0], 1)
        chunk.add(described[1], 1, "warm", None, None, 0, 0.0, 200, None)
        for segment in segments_of([chunk]).values():
            pq.write_table(segment.table(), pa.BufferOutputStream(), compression="lz4")

    # -- the writer -------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(
                target=self._run, name="keel-prediction-log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            self.flush()

    def flush(self, *, final: bool = False) -> int:
        """Write every buffered record now; return the number of segments written.

        A segment the store fails to take is kept for the next flush (if the buffer's
        bounds leave room for it; else its records are counted lost), unless ``final``."""
        from keel.monitoring.prediction_rows import Segment, segments_of

        with self._write_lock:
            self.take_pending()
            with self._lock:
                chunks = self._sealed
                self._sealed = []
                for key, chunk in list(self._open.items()):
                    if chunk.records:
                        chunks.append(chunk)
                        del self._open[key]
                retry, self._retry = self._retry, []
                self._rows = self._records = 0
            if not chunks and not retry:
                return 0
            try:
                segments = segments_of(chunks)
            except Exception:  # noqa: BLE001 - cannot be retried; logged and counted
                self.lost += sum(c.records for c in chunks)
                _log.exception("converting %d prediction log chunks failed", len(chunks))
                segments = {}
                chunks = []  # not reused: a failed conversion may still hold views of them
            for old in retry:  # a refused segment goes first in its key's new segment
                segment = segments.setdefault(old.key, Segment())
                segment.tables[:0] = old.tables
                segment.records += old.records
                segment.rows += old.rows
            written = 0
            failed: list[_Retry] = []
            kept: set[int] = set()  # chunks a kept segment still views
            for key, segment in segments.items():
                if failed:  # the store is failing: the rest waits for the next flush too
                    failed.append(_Retry(key, segment.tables, segment.records, segment.rows))
                    kept.update(id(c) for c in segment.chunks)
                    continue
                try:
                    table = segment.table()
                except Exception:  # noqa: BLE001 - cannot be retried; logged and counted
                    self.lost += segment.records
                    _log.exception("converting %d prediction log records failed", segment.records)
                    continue
                try:
                    self.root.write("predictions", key[0], key[1], table)
                except Exception:  # noqa: BLE001 - logged, counted and retried
                    self.write_errors += 1
                    failed.append(_Retry(key, segment.tables, segment.records, segment.rows))
                    kept.update(id(c) for c in segment.chunks)
                    _log.exception("writing the prediction log to %s failed", self.root.url)
                    continue
                finally:
                    del table  # a view of the chunks: gone before they are reused
                written += 1
                self.written_rows += segment.rows
            self.segments += written
            segments.clear()
            self._release([c for c in chunks if id(c) not in kept])
            if failed:
                self._requeue(failed, final=final)
            return written

    def _requeue(self, failed: list[_Retry], *, final: bool) -> None:
        """Keep segments that failed to write for the next flush, within bounds."""
        kept: list[_Retry] = []
        with self._lock:
            room_rows = self.max_rows - self._rows
            room_records = self.max_records - self._records
            if not final:
                for segment in failed:
                    if segment.rows > room_rows or segment.records > room_records:
                        break
                    kept.append(segment)
                    room_rows -= segment.rows
                    room_records -= segment.records
            self._retry[:0] = kept
            self._rows += sum(s.rows for s in kept)
            self._records += sum(s.records for s in kept)
        self.lost += sum(s.records for s in failed[len(kept) :])

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking records, flush what is buffered and stop the writer thread."""
        self.take_pending()  # submitted before the close: written, not dropped
        with self._lock:
            self._closed = True
            thread = self._thread
        self._stop.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        self.flush(final=True)

    # -- metrics ----------------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """The logger's counters: recorded, dropped, written rows, segments, write errors
        (requests :meth:`submit` queued are taken in first, so they count)."""
        self.take_pending()
        return {
            "recorded": self.recorded,
            "dropped": self.dropped,
            "written_rows": self.written_rows,
            "segments": self.segments,
            "write_errors": self.write_errors,
            "lost": self.lost,
            "invalid": self.invalid,
        }

    def metrics_text(self) -> bytes:
        """This logger's counters in the Prometheus text format (for an app's /metrics)."""
        from keel.monitoring.prediction_metrics import metrics_text

        return metrics_text(self)

    def export_to_default_registry(self) -> None:
        """Add this logger's counters to prometheus-client's process-wide registry (summed
        over every logger exported so; ``keel server``'s /metrics shows that registry)."""
        from keel.monitoring.prediction_metrics import export

        export(self)


def logger_from_settings(
    stores: Stores, settings: KeelSettings | None = None, **overrides: Any
) -> PredictionLogger | None:
    """The prediction logger the settings ask for on ``stores``' artifact root, or None
    when ``prediction_log`` is off (``overrides`` win: enabled, sample_rate, ...)."""
    from keel.monitoring.prediction_store import log_root

    if settings is None:
        from keel.config import get_settings

        settings = get_settings()
    enabled = overrides.pop("enabled", None)
    if enabled is None:
        enabled = settings.prediction_log
    if not enabled:
        return None
    options: dict[str, Any] = {
        "sample_rate": settings.prediction_log_sample_rate,
        "flush_interval": settings.prediction_log_flush_interval,
    }
    options.update({k: v for k, v in overrides.items() if v is not None})
    return PredictionLogger(log_root(stores), **options)
