"""The prediction log's writer: served requests recorded off the request path, in batches.

A server calls :meth:`PredictionLogger.record` once per answered (or failed) request with
its decoded numpy inputs and outputs. That costs the request one append to a bounded
in-memory buffer under a lock: no I/O and no Arrow conversion. A background thread wakes
every ``flush_interval`` seconds (or as soon as ``flush_rows`` rows are waiting), turns
the buffered records into Arrow tables and writes one Parquet segment per
(deployment, UTC hour) to the artifact store (``keel.monitoring.prediction_store``).

The buffer never grows past ``max_rows`` rows or ``max_records`` requests: a record that
would is dropped and counted (``keel_prediction_log_dropped_total``) rather than making
serving wait. A segment the store refuses (unreachable S3...) goes back to the buffer and
is retried at the next flush, within the same bounds. :meth:`PredictionLogger.close`
flushes what is left. ``sample_rate`` decides per request whether its inputs are kept
(outputs and metadata always are); ``keel.monitoring.prediction_serving`` is the serving
side's one call per request.

Row layout (one row per predicted row; see ``keel.monitoring.prediction_rows``):
request_id, row, deployment, model, version, time_ms, latency_ms, status, error,
sampled, ``input.<column>``…, ``output.<name>[.<j>]``….
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

    from keel.config import KeelSettings
    from keel.monitoring.prediction_store import LogRoot
    from keel.stores import Stores

__all__ = ["PredictionLogger", "logger_from_settings"]

DEFAULT_FLUSH_INTERVAL = 5.0
DEFAULT_FLUSH_ROWS = 100_000
DEFAULT_MAX_ROWS = 1_000_000
DEFAULT_MAX_RECORDS = 200_000
_log = logging.getLogger(__name__)

# One buffered request: (deployment, model, version, request_id, time_ms, latency_ms,
# status, error, rows, inputs, input_names, outputs). Inputs are a mapping of 1-D columns,
# or one 2-D block whose columns input_names names, or None when not sampled.
Record = tuple[Any, ...]


class PredictionLogger:
    """Buffers served requests and writes them as Parquet segments from a thread (module doc).

    Construct it (no I/O, no thread), then call :meth:`record` from the serving path; the
    writer thread starts with the first record. Always :meth:`close` it.
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
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | float):
            raise InvalidInput(f"sample_rate is a number from 0 to 1, not {sample_rate!r:.40}")
        if not 0.0 <= sample_rate <= 1.0:
            raise InvalidInput(f"sample_rate must be from 0 to 1, not {sample_rate}")
        for name, value in (
            ("flush_rows", flush_rows),
            ("max_rows", max_rows),
            ("max_records", max_records),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive integer, not {value!r:.40}")
        if (
            isinstance(flush_interval, bool)
            or not isinstance(flush_interval, int | float)
            or not 0 < flush_interval <= 3600
        ):
            raise InvalidInput(f"flush_interval is seconds in (0, 3600], not {flush_interval!r}")
        self.root = root
        self.sample_rate = float(sample_rate)
        self.flush_interval = float(flush_interval)
        self.flush_rows = flush_rows
        self.max_rows = max_rows
        self.max_records = max_records
        self.dropped = 0  # records refused because the buffer was full
        self.recorded = 0  # records accepted into the buffer
        self.written_rows = 0  # rows written to segments
        self.segments = 0  # segments written
        self.write_errors = 0  # flushes that failed (their records are lost, and counted)
        self.lost = 0  # records lost: failed to convert, or to write with no room to retry
        self.invalid = 0  # records left out: their arrays did not hold their rows
        self._buffer: list[Record] = []
        self._rows = 0
        self._lock = threading.Lock()  # guards _buffer/_rows: appends vs the swap
        self._write_lock = threading.Lock()  # one flush at a time (thread vs flush/close)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._random = random.random

    # -- the request path -------------------------------------------------------------------

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
        """Buffer one request; return False when it was dropped (buffer full or closed).

        ``rows`` is the number of predicted rows (1 for a failed request); ``inputs`` and
        ``outputs`` are referenced, not copied, so they must not be changed afterwards.
        ``sampled`` (default: :meth:`sample`) says whether to keep ``inputs``.
        """
        if (
            type(rows) is not int
            or type(status) is not int
            or type(time_ms) is not int
            or not isinstance(request_id, str)
            or not isinstance(deployment, str)
        ):
            raise InvalidInput(
                "record takes deployment and request_id as str, time_ms, status and rows as "
                f"int; got {type(deployment).__name__}, {type(request_id).__name__}, "
                f"{type(time_ms).__name__}, {type(status).__name__}, {type(rows).__name__}"
            )
        if sampled is None:
            sampled = self.sample()
        if status != 200 or rows < 1:
            rows, outputs = 1, None  # a failed request is one row, no outputs
        record = (
            deployment,
            model,
            version,
            request_id,
            time_ms,
            latency_ms,
            status,
            error,
            rows,
            inputs if sampled else None,
            input_names,
            outputs,
        )
        with self._lock:
            if (
                self._closed
                or self._rows + rows > self.max_rows
                or len(self._buffer) >= self.max_records
            ):
                self.dropped += 1
                return False
            self._buffer.append(record)
            self._rows += rows
            self.recorded += 1
            waiting = self._rows
        if self._thread is None:
            self._start()
        if waiting >= self.flush_rows:
            self._wake.set()
        return True

    def warm(self) -> None:
        """Import what the writer needs (pyarrow, Parquet: ~0.5 s of CPU under the import
        lock), so the first flush does not do it while requests are being served."""
        import pyarrow.parquet  # noqa: F401

        import keel.monitoring.prediction_rows  # noqa: F401

    @property
    def buffered_rows(self) -> int:
        """Rows waiting in the buffer for the next flush."""
        return self._rows

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

        A segment the store fails to take goes back to the front of the buffer (as much of
        it as the buffer's bounds allow; the rest is counted lost) for the next flush,
        unless ``final``."""
        from keel.monitoring.prediction_rows import segment_table, segments_of

        with self._write_lock:
            with self._lock:
                batch, self._buffer, self._rows = self._buffer, [], 0
            if not batch:
                return 0
            written = 0
            rejected: list[Record] = []
            failed: list[Record] = []
            for (deployment, hour), records in segments_of(batch, rejected).items():
                if failed:  # the store is failing: the rest waits for the next flush too
                    failed += records
                    continue
                try:
                    table = segment_table(records, rejected)
                except Exception:  # noqa: BLE001 - cannot be retried; logged and counted
                    self.lost += len(records)
                    _log.exception("converting %d prediction log records failed", len(records))
                    continue
                if table is None:  # every record was left out (counted below)
                    continue
                try:
                    self.root.write("predictions", deployment, hour, table)
                except Exception:  # noqa: BLE001 - logged, counted and retried
                    self.write_errors += 1
                    failed += records
                    _log.exception("writing the prediction log to %s failed", self.root.url)
                    continue
                written += 1
                self.written_rows += table.num_rows
            self.segments += written
            if rejected:
                self.invalid += len(rejected)
                _log.warning("left out %d records: wrong deployment or row count", len(rejected))
            if failed:
                self._requeue(failed, final=final)
            return written

    def _requeue(self, records: list[Record], *, final: bool) -> None:
        """Put records that failed to write back in front of the buffer, within bounds."""
        kept: list[Record] = []
        with self._lock:
            room_rows = self.max_rows - self._rows
            room_records = self.max_records - len(self._buffer)
            if not final:
                for record in records:
                    if record[8] > room_rows or room_records < 1:
                        break
                    kept.append(record)
                    room_rows -= record[8]
                    room_records -= 1
            self._buffer[:0] = kept
            self._rows += sum(r[8] for r in kept)
        self.lost += len(records) - len(kept)

    def close(self, timeout: float = 60.0) -> None:
        """Stop taking records, flush what is buffered and stop the writer thread."""
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
        """The logger's counters: recorded, dropped, written rows, segments, write errors."""
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
