"""Monitoring: data drift, reference profiles and data quality of the data a model sees.

``drift(reference, current)`` compares two datasets column by column (KS, chi-square,
PSI, Jensen–Shannon, normalised Wasserstein; chosen by column type and sample size, or
named per column) and overall; ``profile(frame)`` keeps a compact, JSON-serialisable
summary of a training dataset that ``drift`` and ``quality`` accept instead of the raw
rows; ``quality(reference, current)`` reports missing values, out-of-range values,
unseen categories and schema violations. ``monitor_windows(deployment, window="1h")``
splits a deployment's prediction log into windows with their service health, data
quality, drift and live performance; ``compute_figures`` gives the latest window's figures
by name (what alert rules and the ``keel_monitor_*`` gauges use). ``monitoring_report``
gives a deployment's last day (or any window) as a summary, distributions and trends;
its ``to_html()`` is one self-contained HTML file. Names load on first
use, so ``import keel.monitoring`` loads no numpy, pandas or scipy.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ColumnDrift",
    "ColumnProfile",
    "ColumnQuality",
    "DriftReport",
    "MonitoringReport",
    "MultivariateDrift",
    "PredictionLogger",
    "QualityReport",
    "ReferenceProfile",
    "WindowReport",
    "choose_method",
    "compute_figures",
    "domain_classifier",
    "drift",
    "drift_html",
    "log_feedback",
    "monitor_windows",
    "monitoring_report",
    "profile",
    "quality",
    "read_predictions",
    "reference_profile",
]

_EXPORTS = {
    "ColumnDrift": "keel.monitoring.results",
    "ColumnProfile": "keel.monitoring._profile",
    "ColumnQuality": "keel.monitoring._quality",
    "DriftReport": "keel.monitoring.results",
    "MonitoringReport": "keel.monitoring.report",
    "MultivariateDrift": "keel.monitoring.results",
    "PredictionLogger": "keel.monitoring.prediction_log",
    "QualityReport": "keel.monitoring._quality",
    "ReferenceProfile": "keel.monitoring._profile",
    "WindowReport": "keel.monitoring.windows",
    "compute_figures": "keel.monitoring.figures",
    "choose_method": "keel.monitoring._drift",
    "domain_classifier": "keel.monitoring.multivariate",
    "drift": "keel.monitoring._drift",
    "drift_html": "keel.monitoring._html",
    "log_feedback": "keel.monitoring.feedback",
    "monitor_windows": "keel.monitoring.windows",
    "monitoring_report": "keel.monitoring.report",
    "profile": "keel.monitoring._profile",
    "quality": "keel.monitoring._quality",
    "read_predictions": "keel.monitoring.prediction_read",
    "reference_profile": "keel.monitoring._reference",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
