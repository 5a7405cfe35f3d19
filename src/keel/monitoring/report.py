"""A deployment's monitoring report over a trailing window: summary, distributions, trends.

``monitoring_report("churn-prod", window="24h")`` reads the last 24 hours of the
deployment's prediction log once (``keel.monitoring.windows_sources.load_inputs``) and
computes from it, with the window code that ``monitor_windows`` uses:

* the **summary**: the whole window as one ``WindowReport`` (``compute_window``) and its
  figures (``keel.monitoring.figures.figures_of``): requests, error rate, latency
  p50/p95/p99, drift share and verdict, data quality, live performance where feedback
  exists, and the alerts of the deployment's rules fired in the window;
* the **distributions**: per input column of the primary version (the one that answered
  most), the reference (the version's training profile: its histogram or category
  frequencies) against the window's inputs, over the same buckets, from the window's drift;
* the **timeline**: the window cut into buckets (default: window / 24, aligned to the
  epoch as ``monitor_windows`` aligns them), each with its figures and each column's drift
  statistic.

``MonitoringReport.to_dict()`` is what ``keel monitor report --json`` prints and what the
HTML report and the UI page draw.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError
from keel.monitoring.windows import MAX_WINDOWS, WindowReport, parse_window, to_ms

if TYPE_CHECKING:
    from keel.monitoring.alerts.entities import Alert, AlertEvent
    from keel.stores import Stores

__all__ = ["MonitoringReport", "monitoring_report", "resolve_bucket"]

BUCKETS = 24  # the default timeline: a day in hours, an hour in 2.5 minutes
ALERTS_PER_RULE = 100
EVENTS_PER_ALERT = 50


def _finite(value: Any) -> Any:
    """Return ``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def resolve_bucket(window_ms: int, bucket: str | int | float | None) -> int:
    """Return the bucket length in ms: ``bucket`` parsed, or the window / 24 in whole seconds.

    A bucket longer than the window, or one that cuts it into more than 10,000 buckets,
    is an ``InvalidInput``.
    """
    if bucket is None:
        return max(1000, window_ms // BUCKETS // 1000 * 1000)
    try:
        bucket_ms = parse_window(bucket)
    except InvalidInput as exc:
        raise InvalidInput(f"bucket: {exc}") from None
    if bucket_ms > window_ms:
        raise InvalidInput(
            f"bucket {bucket!r} is longer than the window ({window_ms // 1000} s): "
            "a bucket is a part of the window"
        )
    if -(-window_ms // bucket_ms) > MAX_WINDOWS:
        raise InvalidInput(
            f"bucket {bucket!r} cuts the window into more than {MAX_WINDOWS:,} buckets; "
            "use a longer bucket"
        )
    return bucket_ms


@dataclass(frozen=True)
class MonitoringReport:
    """A deployment's monitoring over [start_ms, end_ms): see the module doc.

    ``overall`` is the whole window as one window; ``timeline`` the buckets with traffic,
    oldest first; ``alerts`` the alerts of the deployment's rules active in the window,
    newest first, with ``events`` by alert id; ``notes`` say what could not be read.
    """

    deployment: str
    window: str
    start_ms: int
    end_ms: int
    bucket_ms: int
    overall: WindowReport
    timeline: tuple[WindowReport, ...] = ()
    alerts: tuple[Alert, ...] = ()
    events: dict[str, tuple[AlertEvent, ...]] = field(default_factory=dict)
    generated_at_ms: int = 0
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when the deployment logged no traffic in the window."""
        return self.overall.health is None or self.overall.health.requests == 0

    @property
    def fired_alerts(self) -> tuple[Alert, ...]:
        """The alerts that started firing inside the window."""
        return tuple(
            a
            for a in self.alerts
            if a.fired_at is not None and self.start_ms <= a.fired_at < self.end_ms
        )

    def summary(self) -> dict[str, Any]:
        """Return the summary table: figures, versions, drift, quality, performance, alerts."""
        from keel.monitoring.figures import figures_of
        from keel.monitoring.windows_data import drift_summary

        primary = self.overall.primary
        out: dict[str, Any] = {
            "figures": figures_of(self.overall),
            "requests": 0 if self.overall.health is None else self.overall.health.requests,
            "health": None if self.overall.health is None else self.overall.health.to_dict(),
            "versions": [
                {"model": v.model, "version": v.version, "requests": v.requests}
                for v in self.overall.versions
            ],
            "model": None if primary is None else primary.model,
            "version": None if primary is None else primary.version,
            "drift": None,
            "quality": None,
            "performance": None,
            "decay": None,
            "notes": {} if primary is None else dict(primary.notes),
            "alerts_fired": len(self.fired_alerts),
            "alerts_firing": sum(1 for a in self.alerts if a.state.value == "firing"),
        }
        if primary is not None:
            if primary.drift is not None:
                out["drift"] = drift_summary(primary.drift)
            if primary.quality is not None:
                out["quality"] = primary.quality.to_dict()
            if primary.performance is not None:
                out["performance"] = primary.performance.to_dict()
            if primary.decay is not None:
                out["decay"] = primary.decay.to_dict()
        return out

    def distributions(self) -> list[dict[str, Any]]:
        """Return per input column the reference and current counts over the same buckets."""
        primary = self.overall.primary
        if primary is None or primary.drift is None:
            return []
        quality = {}
        if primary.quality is not None:
            quality = {c.column: c for c in primary.quality.columns}
        out = []
        for c in primary.drift.columns:
            if c.distribution is None:
                continue
            q = quality.get(c.column)
            out.append(
                {
                    "column": c.column,
                    "kind": c.kind,
                    "method": c.method,
                    "statistic": c.statistic,
                    "p_value": c.p_value,
                    "threshold": c.threshold,
                    "drifted": c.drifted,
                    "n_reference": c.n_reference,
                    "n_current": c.n_current,
                    "labels": list(c.distribution.labels),
                    "reference": list(c.distribution.reference),
                    "current": list(c.distribution.current),
                    "missing_rate": None if q is None else q.missing_rate,
                }
            )
        return out

    def timeline_rows(self) -> list[dict[str, Any]]:
        """Return each bucket: its bounds, figures, primary version and per-column drift."""
        from keel.monitoring.figures import figures_of

        rows = []
        for w in self.timeline:
            primary = w.primary
            drift = None if primary is None else primary.drift
            rows.append(
                {
                    "start_ms": w.start_ms,
                    "end_ms": w.end_ms,
                    "figures": figures_of(w),
                    "model": None if primary is None else primary.model,
                    "version": None if primary is None else primary.version,
                    "columns": {}
                    if drift is None
                    else {
                        c.column: {
                            "method": c.method,
                            "statistic": c.statistic,
                            "p_value": c.p_value,
                            "drifted": c.drifted,
                        }
                        for c in drift.columns
                    },
                }
            )
        return rows

    def to_html(self, *, title: str | None = None) -> str:
        """Return the report as one self-contained HTML page (``keel.monitoring.report_html``)."""
        from keel.monitoring.report_html import report_html

        return report_html(self, title=title)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data (non-finite numbers become None)."""
        return _finite(
            {
                "deployment": self.deployment,
                "window": self.window,
                "start_ms": self.start_ms,
                "end_ms": self.end_ms,
                "bucket_ms": self.bucket_ms,
                "generated_at_ms": self.generated_at_ms,
                "empty": self.empty,
                "summary": self.summary(),
                "distributions": self.distributions(),
                "timeline": self.timeline_rows(),
                "alerts": [
                    {
                        **a.to_dict(),
                        "events": [e.to_dict() for e in self.events.get(a.alert_id, ())],
                    }
                    for a in self.alerts
                ],
                "notes": dict(self.notes),
            }
        )


def _alerts(
    stores: Stores, deployment: str, lo: int, hi: int, notes: dict[str, str]
) -> tuple[tuple[Alert, ...], dict[str, tuple[AlertEvent, ...]]]:
    """Return the deployment's alerts active in [lo, hi), newest first, and their events."""
    try:
        store = stores.alerts
        found: list[Alert] = []
        for rule in store.list_rules(deployment=deployment):
            for a in store.list_alerts(rule=rule.name, limit=ALERTS_PER_RULE):
                ended = a.resolved_at is not None and a.resolved_at < lo
                if a.deployment == deployment and a.started_at < hi and not ended:
                    found.append(a)
        found.sort(key=lambda a: a.started_at, reverse=True)
        events = {
            a.alert_id: tuple(store.alert_events(alert_id=a.alert_id, limit=EVENTS_PER_ALERT))
            for a in found
        }
    except KeelError as exc:  # e.g. a server without the alerts API: the rest still stands
        notes["alerts"] = f"alerts could not be read: {exc}"
        return (), {}
    return tuple(found), events


def monitoring_report(
    deployment: str,
    *,
    window: str | int | float = "24h",
    bucket: str | int | float | None = None,
    end: int | datetime | None = None,
    stores: Stores | None = None,
) -> MonitoringReport:
    """Return the deployment's ``MonitoringReport`` over the ``window`` before ``end``.

    ``window`` and ``bucket`` are durations (``"1h"``, ``"7d"``, or seconds); ``bucket``
    defaults to the window / 24; ``end`` (ms since the epoch or an aware datetime)
    defaults to now. A bad window or bucket is an ``InvalidInput``; a deployment that
    logged nothing in the window and that the store does not know, a ``NotFound``.
    """
    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.windows import compute_window, compute_windows
    from keel.monitoring.windows_sources import load_inputs

    check_deployment_name(deployment)
    window_ms = parse_window(window)
    bucket_ms = resolve_bucket(window_ms, bucket)
    if stores is None:
        from keel.stores import current_stores

        stores = current_stores()
    now = int(time.time() * 1000)
    hi = to_ms(end, name="end")
    hi = now if hi is None else hi
    lo = max(hi - window_ms, 0)
    if hi <= lo:
        raise InvalidInput(f"end ({hi}) must be after the epoch")
    data = load_inputs(stores, deployment, lo, hi)
    common: dict[str, Any] = {
        "references": data.references,
        "offline": data.offline,
        "samples": data.samples,
        "deployment": deployment,
    }
    overall = compute_window(data.frame, start=lo, end=hi, **common)
    timeline = compute_windows(data.frame, window=bucket_ms / 1000, start=lo, end=hi, **common)
    notes: dict[str, str] = {}
    alerts, events = _alerts(stores, deployment, lo, hi, notes)
    return MonitoringReport(
        deployment=deployment,
        window=window.strip() if isinstance(window, str) else f"{window_ms // 1000}s",
        start_ms=lo,
        end_ms=hi,
        bucket_ms=bucket_ms,
        overall=overall,
        timeline=tuple(timeline),
        alerts=alerts,
        events=events,
        generated_at_ms=now,
        notes=notes,
    )
