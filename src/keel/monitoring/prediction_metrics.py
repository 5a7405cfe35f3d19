"""Prometheus counters of prediction loggers (``keel.monitoring.prediction_log``)::

    keel_prediction_log_recorded_total      requests taken into the buffer
    keel_prediction_log_dropped_total       requests dropped: the buffer was full
    keel_prediction_log_rows_total          rows written to segments
    keel_prediction_log_segments_total      segments written
    keel_prediction_log_write_errors_total  flushes that failed (their records are lost)

``keel serve`` appends one logger's text to its own /metrics; ``keel server`` exports its
loggers to prometheus-client's process-wide registry, summed over the loggers alive (held
weakly, so a closed and forgotten logger leaves the sum).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.monitoring.prediction_log import PredictionLogger

__all__ = ["export", "metrics_text"]

_FAMILIES = (
    ("keel_prediction_log_recorded", "Requests recorded in the prediction log.", "recorded"),
    (
        "keel_prediction_log_dropped",
        "Requests the prediction log dropped because its buffer was full.",
        "dropped",
    ),
    ("keel_prediction_log_rows", "Rows written to prediction log segments.", "written_rows"),
    ("keel_prediction_log_segments", "Prediction log segments written.", "segments"),
    ("keel_prediction_log_write_errors", "Prediction log flushes that failed.", "write_errors"),
)


class _Collector:
    def __init__(self, loggers: Callable[[], Iterable[PredictionLogger]]) -> None:
        self._loggers = loggers

    def describe(self) -> list[Any]:
        return []  # unchecked names: the families are fixed and all distinct

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        loggers = list(self._loggers())
        for logger in loggers:  # queued requests counted too (recorded, dropped, invalid)
            logger.take_pending()
        for name, text, field in _FAMILIES:
            total = sum(getattr(logger, field) for logger in loggers)
            yield CounterMetricFamily(name, text, value=total)


_exported: weakref.WeakSet[PredictionLogger] = weakref.WeakSet()
_registered = False
_registry_lock = threading.Lock()


def _register_default() -> None:
    global _registered
    with _registry_lock:
        if _registered:
            return
        from prometheus_client import REGISTRY

        REGISTRY.register(_Collector(lambda: list(_exported)))
        _registered = True


def metrics_text(logger: PredictionLogger) -> bytes:
    """``logger``'s counters in the Prometheus text exposition format."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(lambda: [logger]))
    return generate_latest(registry)


def export(logger: PredictionLogger) -> None:
    """Count ``logger`` in the process-wide registry's prediction-log counters."""
    _exported.add(logger)
    _register_default()
