"""Prometheus metrics of ``keel serve``: one registry per app, exported on ``GET /metrics``.

::

    keel_serving_requests_total{route,code}      counter    HTTP answers by route and status
    keel_serving_request_seconds{route}          histogram  handler time, body read to answer
    keel_serving_batch_rows                      histogram  rows per predict batch
    keel_serving_batches_total                   counter    predict batches run
    keel_serving_batched_requests_total          counter    requests run in batches
    keel_serving_batched_rows_total              counter    rows run in batches
    keel_serving_rejected_total                  counter    requests refused, queue full
    keel_serving_predict_calls_total             counter    model predict calls
    keel_serving_queue_depth                     gauge      requests waiting for a batch
    keel_serving_ready                           gauge      1 when loaded and warm

Label sets are bounded: ``route`` is one of the app's fixed route names (an unknown path is
answered by the not-found handler and not counted), ``code`` one of the status codes those
routes answer. The registry is the app's own, not prometheus-client's process-wide default,
so several apps in one process (tests, a deployment data plane next to it) never share or
collide. Counters that the batcher and the service already keep are read from them when
scraped instead of being counted twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import ModelService

__all__ = ["BATCH_BUCKETS", "CONTENT_TYPE", "LATENCY_BUCKETS", "ServingMetrics"]

# Seconds: from a sub-millisecond predict on loopback to a request that waited out a queue;
# the same bounds as the deployment data plane's histogram, so dashboards compare them.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Rows: powers of two up to past the largest default batch (128) and a long request.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServingMetrics:
    """The app's metrics: observe requests and batches, render the Prometheus text."""

    def __init__(self, service: ModelService) -> None:
        from prometheus_client import CollectorRegistry, Histogram

        self.codes: Counter[tuple[str, int]] = Counter()
        self._registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "keel_serving_request_seconds",
            "Time a route took to answer, from its handler's start (body read included).",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self._registry,
        )
        self.batch_rows = Histogram(
            "keel_serving_batch_rows",
            "Rows per predict batch (a lone request predicted inline counts as one batch).",
            buckets=BATCH_BUCKETS,
            registry=self._registry,
        )
        self._registry.register(_ServiceCollector(service, self.codes))
        hook = service.batcher.on_batch

        def on_batch(requests: int, rows: int) -> None:
            self.batch_rows.observe(rows)
            if hook is not None:  # keep a hook someone set before this app
                hook(requests, rows)

        service.batcher.on_batch = on_batch

    def observe(self, route: str, code: int, seconds: float) -> None:
        """Count one answer of ``route`` and observe how long it took."""
        self.codes[(route, code)] += 1
        self.latency.labels(route).observe(seconds)

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric of this app."""
        from prometheus_client import generate_latest

        return generate_latest(self._registry)


class _ServiceCollector:
    """Counters and gauges read from the service and its batcher at scrape time."""

    def __init__(self, service: ModelService, codes: Counter[tuple[str, int]]) -> None:
        self._service = service
        self._codes = codes

    def describe(self) -> list[Any]:
        return []  # unchecked names: the families are fixed and all distinct

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        service, stats = self._service, self._service.batcher.stats
        requests = CounterMetricFamily(
            "keel_serving_requests",
            "HTTP requests by route and status code.",
            labels=["route", "code"],
        )
        for (route, code), n in sorted(self._codes.items()):
            requests.add_metric([route, str(code)], n)
        yield requests
        for name, text, value in (
            ("keel_serving_batches", "Predict batches run.", stats.batches),
            ("keel_serving_batched_requests", "Requests run in batches.", stats.requests),
            ("keel_serving_batched_rows", "Rows run in batches.", stats.rows),
            ("keel_serving_rejected", "Requests refused: queue full.", stats.rejected),
            ("keel_serving_predict_calls", "Model predict calls.", service.predict_calls),
        ):
            yield CounterMetricFamily(name, text, value=value)
        yield GaugeMetricFamily(
            "keel_serving_queue_depth",
            "Requests waiting for a batch.",
            value=service.batcher.queued,
        )
        yield GaugeMetricFamily(
            "keel_serving_ready",
            "1 when the model is loaded and warm.",
            value=int(service.server_ready()),
        )
