"""CPU and memory of the serving process, sampled periodically and stored for the windows.

A deployment is served inside ``keel server`` (its data plane), so every deployment that
server serves shares one process: the samples are **one server-wide series**, not one per
deployment. Each running server writes its own samples, tagged with ``process``
(``host:pid``), as Parquet segments at::

    <artifact root>/monitoring/health/hour=<YYYY-MM-DDTHH>/<segment-id>.parquet

columns ``time_ms`` (int64, ms since the epoch), ``process`` (string), ``cpu_percent``
(float64: CPU time used since the previous sample over the wall time between them, in
percent of one core, so a busy multi-threaded process can exceed 100) and
``memory_rss_bytes`` (int64, resident set size; null where it cannot be read). The root is
the prediction log's (a local folder or s3://), written through the artifact store's own
backend. A window (``keel.monitoring.windows``) of any deployment takes the mean CPU and
the peak memory of every process's samples in it: with several servers behind one store,
that is across them.

CPU time comes from ``os.times()`` (user + system, what ``/proc/self/stat`` holds as
utime + stime, but on any OS). The resident set size is read from
``/proc/self/status`` (``VmRSS``), so it is **Linux only**: elsewhere memory is null and
the ``memory_rss_bytes`` figure is absent, while CPU still works.

``health_sampling_job(stores)`` is the :class:`keel.scheduler.PeriodicJob` that samples
every ``every_s`` seconds and writes a segment every ``flush_every_s`` (and whenever the
hour changes), so a server that dies loses at most that much. It is not exclusive: every
server samples itself.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    import pandas as pd

    from keel.scheduler import PeriodicJob
    from keel.stores import Stores

__all__ = [
    "HealthSampler",
    "Sample",
    "artifact_root",
    "empty_samples",
    "health_sampling_job",
    "read_samples",
    "rss_bytes",
]

PREFIX = "monitoring/health"
MAX_BUFFER = 10_000  # samples kept while the store is unreachable (~42 h at 15 s)


@dataclass(frozen=True)
class Sample:
    """One reading of this process: when, CPU percent since the last one, resident memory."""

    time_ms: int
    process: str
    cpu_percent: float
    memory_rss_bytes: int | None


def rss_bytes() -> int | None:
    """Return this process's resident set size in bytes (Linux ``/proc``), else None."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    parts = line.split()
                    return int(parts[1]) * 1024 if parts[2].lower() == "kb" else int(parts[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class HealthSampler:
    """Take samples of this process and write them, batched, under the artifact root."""

    def __init__(self, root: str, *, flush_every_s: float = 60.0) -> None:
        if not flush_every_s > 0:
            raise InvalidInput(f"flush_every_s must be positive, not {flush_every_s!r}")
        self.root = root.rstrip("/")
        self.flush_every_s = float(flush_every_s)
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._buffer: list[Sample] = []
        self._last = (time.monotonic(), _cpu_seconds())
        self._flushed_at = time.monotonic()

    def sample(self) -> Sample:
        """Return a new sample (CPU since the previous one) and keep it for the next flush."""
        now, cpu = time.monotonic(), _cpu_seconds()
        with self._lock:
            then, cpu_then = self._last
            self._last = (now, cpu)
            wall = now - then
            percent = 100.0 * (cpu - cpu_then) / wall if wall > 0 else 0.0
            item = Sample(int(time.time() * 1000), self.process, max(percent, 0.0), rss_bytes())
            self._buffer.append(item)
        return item

    def run(self) -> None:
        """Sample once and flush when the batch is old enough or the hour changed."""
        item = self.sample()
        with self._lock:
            first = self._buffer[0] if self._buffer else item
            due = time.monotonic() - self._flushed_at >= self.flush_every_s
            new_hour = _hour(first.time_ms) != _hour(item.time_ms)
        if due or new_hour:
            self.flush()

    def flush(self) -> int:
        """Write the buffered samples as one segment per hour; return how many were written."""
        with self._lock:
            batch, self._buffer = self._buffer, []
            self._flushed_at = time.monotonic()
        by_hour: dict[str, list[Sample]] = {}
        for item in batch:
            by_hour.setdefault(_hour(item.time_ms), []).append(item)
        written = 0
        try:
            for hour, items in by_hour.items():
                _write(self.root, hour, items)
                written += len(items)
        except Exception:
            # Keep what was not written for the next flush (bounded: a store down for a
            # day must not grow the buffer without end), then let the scheduler count it.
            unwritten = [i for h, items in by_hour.items() for i in items][written:]
            with self._lock:
                self._buffer = (unwritten + self._buffer)[-MAX_BUFFER:]
            raise
        return written


def _hour(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H")


def _hour_ms(name: str) -> int | None:
    """Return the start of an ``hour=YYYY-MM-DDTHH`` partition in ms; None for anything else."""
    if not name.startswith("hour="):
        return None
    try:
        moment = datetime.strptime(name[5:], "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def _backend(root: str) -> Any:
    # The artifact store's own byte mover: a local folder, or s3:// through s3fs with the
    # store's settings, exactly as the prediction log writes beside these samples.
    from keel.store.blobs import normalise_url, open_backend

    return open_backend(normalise_url(root), None)


def _write(root: str, hour: str, items: list[Sample]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "time_ms": pa.array([s.time_ms for s in items], pa.int64()),
            "process": pa.array([s.process for s in items], pa.string()),
            "cpu_percent": pa.array([s.cpu_percent for s in items], pa.float64()),
            "memory_rss_bytes": pa.array([s.memory_rss_bytes for s in items], pa.int64()),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    data = out.getvalue()
    backend = _backend(root)
    final = backend.join(*PREFIX.split("/"), f"hour={hour}", f"{uuid.uuid4().hex}.parquet")
    direct = backend.direct_writes  # S3: a PUT appears whole or not at all
    # A reader must never see half a segment: the temp name does not end in .parquet.
    target = final if direct else f"{final[: -len('.parquet')]}.part"
    try:
        with backend.open_write(target, temporary=not direct, size_hint=len(data)) as f:
            f.write(data)
        if not direct:
            backend.publish(target, final)
    except backend.unavailable_errors as exc:
        raise StoreUnavailable(f"cannot write process samples to {root} ({exc})") from exc


def _listing(backend: Any, folder: str) -> list[str]:
    fs = getattr(backend, "fs", None)
    if fs is None:
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    fs.invalidate_cache(folder)
    try:
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False))
    except FileNotFoundError:
        return []


def read_samples(root: str, start_ms: int, end_ms: int) -> pd.DataFrame:
    """Return the process samples with ``time_ms`` in [start_ms, end_ms), every process.

    Only the hour partitions that overlap the range are read.
    """
    import pyarrow.parquet as pq

    if end_ms <= start_ms:
        return empty_samples()
    backend = _backend(root)
    folder = backend.join(*PREFIX.split("/"))
    fs = getattr(backend, "fs", None)
    frames = []
    for entry in _listing(backend, folder):
        hour_ms = _hour_ms(entry)
        if hour_ms is None or hour_ms + 3_600_000 <= start_ms or hour_ms >= end_ms:
            continue
        hour_folder = backend.join(*PREFIX.split("/"), entry)
        for name in _listing(backend, hour_folder):
            if name.endswith(".parquet") and not name.startswith("."):
                path = backend.join(*PREFIX.split("/"), entry, name)
                frames.append(pq.read_table(path, filesystem=fs).to_pandas())
    if not frames:
        return empty_samples()
    import pandas as pd

    samples = pd.concat(frames, ignore_index=True)
    inside = (samples["time_ms"] >= start_ms) & (samples["time_ms"] < end_ms)
    return samples.loc[inside].sort_values("time_ms", kind="stable").reset_index(drop=True)


def empty_samples() -> pd.DataFrame:
    """Return a frame of no samples, with the columns and dtypes of stored ones."""
    import pandas as pd

    return pd.DataFrame(
        {
            "time_ms": pd.Series([], dtype="int64"),
            "process": pd.Series([], dtype=object),
            "cpu_percent": pd.Series([], dtype="float64"),
            "memory_rss_bytes": pd.Series([], dtype="Int64"),
        }
    )


def artifact_root(stores: Stores) -> str:
    """Return the root the monitoring data lives under: the prediction log's root.

    Through a Keel server that is ``KEEL_ARTIFACT_URI`` when set (``InvalidInput``
    otherwise), as ``keel.monitoring.prediction_store.log_root`` decides.
    """
    from keel.monitoring.prediction_store import log_root

    return log_root(stores).url


def health_sampling_job(
    stores: Stores, *, every_s: float = 15.0, flush_every_s: float = 60.0
) -> PeriodicJob:
    """Return the job that samples this process every ``every_s`` s and stores the samples."""
    from keel.scheduler import PeriodicJob

    sampler = HealthSampler(artifact_root(stores), flush_every_s=flush_every_s)
    return PeriodicJob("monitoring.health-sampler", every_s, sampler.run, exclusive=False)
