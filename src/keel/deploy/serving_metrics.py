"""Prometheus metrics of the deployment data plane, per deployment and version.

Exported at ``keel server``'s ``/metrics`` (prometheus-client's default registry)::

    keel_deployment_requests_total{deployment,model,version}        counter
    keel_deployment_errors_total{deployment,model,version}          counter (as BackendWindow)
    keel_deployment_rejected_total{deployment,model,version}        counter (input refused)
    keel_deployment_request_seconds{deployment,model,version}       histogram
    keel_deployment_batch_rows{deployment,model,version}            histogram (rows per batch)
    keel_deployment_queue_depth{deployment,model,version}           gauge (waiting requests)
    keel_deployment_traffic_weight{deployment,model,version,role}   gauge (percent)
    keel_deployment_shadow_dropped_total{deployment,model,version}  counter (mirror shed)

Label sets stay bounded: a backend's series are removed when it leaves its deployment, so
only the versions some plan references are exported. The metric objects are created on
first use (not at import) and shared by every router of the process.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.deploy.traffic import Backend
    from keel.serving.batching import MicroBatcher

__all__ = ["BackendMeter"]

_LABELS = ("deployment", "model", "version")
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class _Family:
    requests: Any
    errors: Any
    rejected: Any
    latency: Any
    batch_rows: Any
    queue: Any
    weight: Any
    dropped: Any


@cache
def _family() -> _Family:
    from prometheus_client import Counter, Gauge, Histogram

    return _Family(
        requests=Counter(
            "keel_deployment_requests", "Requests routed to a deployment's version.", _LABELS
        ),
        errors=Counter(
            "keel_deployment_errors",
            "Requests a version failed after its input checks (model error, overload).",
            _LABELS,
        ),
        rejected=Counter(
            "keel_deployment_rejected", "Requests a version's input checks refused (400).", _LABELS
        ),
        latency=Histogram(
            "keel_deployment_request_seconds",
            "Time from routing to the model's answer (queueing and batching included).",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
        ),
        batch_rows=Histogram(
            "keel_deployment_batch_rows",
            "Rows per predict batch of a deployment's version.",
            _LABELS,
            buckets=_BATCH_BUCKETS,
        ),
        queue=Gauge("keel_deployment_queue_depth", "Requests waiting for a batch.", _LABELS),
        weight=Gauge(
            "keel_deployment_traffic_weight",
            "Share of live traffic in percent (0 for standby and shadow).",
            (*_LABELS, "role"),
        ),
        dropped=Counter(
            "keel_deployment_shadow_dropped",
            "Shadow mirrors shed because the mirror queue was full.",
            _LABELS,
        ),
    )


class BackendMeter:
    """The Prometheus series of one backend of one deployment."""

    def __init__(self, deployment: str, backend: Backend) -> None:
        family = _family()
        self._labels = (deployment, backend.model, str(backend.version))
        self._role: str | None = None
        self.requests = family.requests.labels(*self._labels)
        self.errors = family.errors.labels(*self._labels)
        self.rejected = family.rejected.labels(*self._labels)
        self.latency = family.latency.labels(*self._labels)
        self.batch_rows = family.batch_rows.labels(*self._labels)
        self.queue = family.queue.labels(*self._labels)
        self.dropped = family.dropped.labels(*self._labels)

    def success(self, seconds: float) -> None:
        """Count an answered request and observe its latency."""
        self.requests.inc()
        self.latency.observe(seconds)

    def error(self) -> None:
        """Count a failed request."""
        self.requests.inc()
        self.errors.inc()

    def reject(self) -> None:
        """Count a request the input checks refused."""
        self.requests.inc()
        self.rejected.inc()

    def on_batch(self, requests: int, rows: int) -> None:
        """Observe one batch's row count (the batcher's ``on_batch`` hook)."""
        self.batch_rows.observe(rows)

    def track(self, batcher: MicroBatcher[Any, Any]) -> None:
        """Read the queue depth from ``batcher`` and observe its batches (a reload swaps it)."""
        batcher.on_batch = self.on_batch
        self.queue.set_function(lambda: batcher.queued)

    def set_weight(self, backend: Backend) -> None:
        """Export the backend's weight under its current role (the old role's series goes)."""
        family = _family()
        role = backend.role.value
        if self._role is not None and self._role != role:
            with contextlib.suppress(KeyError):
                family.weight.remove(*self._labels, self._role)
        self._role = role
        family.weight.labels(*self._labels, role).set(backend.weight)

    def remove(self) -> None:
        """Drop every series of this backend (it left its deployment)."""
        family = _family()
        for metric in (
            family.requests,
            family.errors,
            family.rejected,
            family.latency,
            family.batch_rows,
            family.queue,
            family.dropped,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(*self._labels)
        if self._role is not None:
            with contextlib.suppress(KeyError):
                family.weight.remove(*self._labels, self._role)
