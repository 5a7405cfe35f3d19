"""Per-backend live figures over a sliding time window, for canary gates and A/B analysis.

A :class:`BackendWindow` keeps one bucket per wall-clock second (epoch seconds, the clock
the control plane passes as ``since``) for the last ``retention`` seconds. A bucket counts
requests, errors and client rejections, sums named extras (shadow agreement), and keeps a
reservoir sample of at most ``samples`` latencies, so memory is bounded whatever the load
and the p99 over a window is a weighted quantile of the buckets' samples (each sample
stands for ``seen / kept`` latencies of its second).

What counts (decided here, read by every gate):

- ``requests``: every request routed to the backend, client rejections included;
- ``errors``: every failure after the request passed the version's input checks — the
  model raising, the queue full (503), the service not ready, anything unexpected. A
  request the version's signature check refused (a 400 before the model ran) is the
  caller's fault: it is counted in ``extra["rejected"]``, not in ``errors``;
- ``p99_ms``: the 99th percentile latency of successful requests, from routing to the
  model's answer (queueing and batching included, HTTP parsing not), None without any.

A window's resolution is one second: ``since`` selects every bucket of the second it falls
in and later ones.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from keel.deploy.traffic import BackendStats
from keel.errors import InvalidInput

__all__ = ["DEFAULT_RETENTION", "DEFAULT_SAMPLES", "BackendWindow", "weighted_quantile"]

DEFAULT_RETENTION = 3600  # seconds of history kept per backend
DEFAULT_SAMPLES = 256  # latencies kept per second per backend


@dataclass
class _Bucket:
    second: int
    requests: int = 0
    errors: int = 0
    rejected: int = 0
    seen: int = 0  # latencies offered to the reservoir
    latencies: list[float] = field(default_factory=list)
    extras: dict[str, float] = field(default_factory=dict)


class BackendWindow:
    """A bounded per-second record of one backend's requests; :meth:`stats` over a window."""

    def __init__(
        self,
        key: str,
        *,
        retention: int = DEFAULT_RETENTION,
        samples: int = DEFAULT_SAMPLES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention < 1 or samples < 1:
            raise InvalidInput("a stats window needs retention >= 1 s and samples >= 1")
        self.key = key
        self._retention = retention
        self._samples = samples
        self._clock = clock
        self._buckets: deque[_Bucket] = deque()
        # The event loop records while the controller may read from another thread.
        self._lock = threading.Lock()
        self._random = random.Random()

    def _bucket(self) -> _Bucket:
        second = math.floor(self._clock())
        buckets = self._buckets
        if buckets and buckets[-1].second >= second:  # same second (or the clock stepped back)
            return buckets[-1]
        bucket = _Bucket(second)
        buckets.append(bucket)
        while buckets[0].second <= second - self._retention:
            buckets.popleft()
        return bucket

    def success(self, latency_ms: float) -> None:
        """Record a request the backend answered in ``latency_ms``."""
        with self._lock:
            bucket = self._bucket()
            bucket.requests += 1
            bucket.seen += 1
            if len(bucket.latencies) < self._samples:
                bucket.latencies.append(latency_ms)
            else:  # reservoir sampling (Algorithm R): every latency equally likely kept
                slot = self._random.randrange(bucket.seen)
                if slot < self._samples:
                    bucket.latencies[slot] = latency_ms

    def error(self) -> None:
        """Record a request the backend failed (see the module docstring)."""
        with self._lock:
            bucket = self._bucket()
            bucket.requests += 1
            bucket.errors += 1

    def rejected(self) -> None:
        """Record a request the backend's input checks refused (the caller's fault)."""
        with self._lock:
            bucket = self._bucket()
            bucket.requests += 1
            bucket.rejected += 1

    def add(self, name: str, value: float = 1.0) -> None:
        """Add ``value`` to the named extra figure of this second (e.g. agreeing rows)."""
        with self._lock:
            extras = self._bucket().extras
            extras[name] = extras.get(name, 0.0) + value

    def stats(self, since: float) -> BackendStats:
        """Return the figures of every second from ``since`` (epoch seconds) to now.

        ``extra`` holds the summed extras, ``rejected``, and ``agreement`` (``agreed`` /
        ``compared``: the share of mirrored requests whose answer equalled the live one)
        when a shadow comparison was recorded.
        """
        if (
            isinstance(since, bool)
            or not isinstance(since, int | float)
            or not math.isfinite(since)
        ):
            raise InvalidInput(f"'since' must be a finite epoch time in seconds, not {since!r}")
        first = math.floor(since)
        with self._lock:
            chosen = [b for b in self._buckets if b.second >= first]
            values = [list(b.latencies) for b in chosen]
        requests = sum(b.requests for b in chosen)
        errors = sum(b.errors for b in chosen)
        extra: dict[str, float] = {"rejected": float(sum(b.rejected for b in chosen))}
        for bucket in chosen:
            for name, value in bucket.extras.items():
                extra[name] = extra.get(name, 0.0) + value
        if extra.get("compared"):
            extra["agreement"] = extra.get("agreed", 0.0) / extra["compared"]
        weights = [b.seen / len(v) for b, v in zip(chosen, values, strict=True) if v]
        kept = [v for v in values if v]
        p99 = None
        if kept:
            latencies = np.concatenate([np.asarray(v, dtype=np.float64) for v in kept])
            each = np.repeat(np.asarray(weights), [len(v) for v in kept])
            p99 = weighted_quantile(latencies, each, 0.99)
        return BackendStats(self.key, requests, errors, p99, extra)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Return the smallest value whose cumulative weight reaches ``q`` of the total.

    With equal weights this is the "inverted CDF" quantile (``numpy.quantile(...,
    method="inverted_cdf")``).
    """
    if not 0 <= q <= 1:
        raise InvalidInput(f"a quantile must be within [0, 1], not {q!r}")
    if len(values) == 0 or len(values) != len(weights):
        raise InvalidInput("a weighted quantile needs as many weights as values, at least one")
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    # a relative tolerance keeps float rounding in the sum from skipping the exact quantile
    target = q * cumulative[-1] * (1 - 1e-12)
    index = int(np.searchsorted(cumulative, target, side="left"))
    return float(np.asarray(values)[order][min(index, len(values) - 1)])
