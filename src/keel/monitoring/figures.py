"""The latest window's monitoring figures of a deployment, by name: what alert rules compare.

``compute_figures(stores, deployment, window_s=300)`` reads the trailing window
[now − window_s, now) of the deployment's prediction log and process samples and
returns the figures that can be computed. A figure that cannot be computed (no traffic,
no feedback, no reference profile, no sample) is **absent**, never 0.

Service health (per request, every version of the deployment together):

* ``request_count``: requests in the window;
* ``throughput_rps``: requests per second of the window;
* ``error_rate``: share of requests that failed (status >= 500);
* ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms``: percentiles of the answered
  requests' latency in milliseconds.

Data and model figures are those of the **primary version**, the one that answered the
most requests in the window (the stable one during a canary):

* ``missing_rate``, ``out_of_range_rate``, ``unseen_category_rate``: the worst input
  column's share of missing values, of numbers outside the reference's [min, max], and of
  categories the reference never had (an alert fires on the first column that goes bad);
* ``schema_violations``: reference columns missing, extra columns and type changes, counted;
* ``drift_share``: share of drifted input columns; ``drift_detected``: 1 when the dataset
  drifted (share >= 0.5), else 0. Both are absent below ``MIN_DRIFT_ROWS`` sampled rows
  of the version: when traffic stops, the trailing window drains to a row or two, whose
  verdict is noise (one drifted row compared 8 of 30 columns as drifted) and would
  resolve a drift alert on no evidence;
* ``accuracy``, ``precision``, ``recall``, ``f1``, ``roc_auc`` (classifiers) and ``rmse``,
  ``mae``, ``r2`` (regressors), over the rows with feedback;
* ``<metric>_decay`` for each of those the version's run also logged: how much worse
  the live metric is than the offline one (positive = worse; see
  ``keel.monitoring.performance``).

Serving process (``keel.monitoring.health_sampler``; server-wide):

* ``cpu_percent``: mean CPU of the serving process(es), percent of one core;
* ``memory_rss_bytes``: peak resident memory in the window (Linux only).

Prometheus: ``figures_job(stores)`` is the periodic job that recomputes every deployment's
figures and publishes them as gauges ``keel_monitor_<figure>{deployment="…"}`` on the
server's ``/metrics`` (prometheus-client's default registry, registered on first publish).
A figure that became absent is removed with its series, never left stale; a deleted
deployment's series go too. Every server runs the job (it is not exclusive), so whichever
server Prometheus scrapes answers with the figures.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.performance import CLASSIFICATION_METRICS, REGRESSION_METRICS

if TYPE_CHECKING:
    from keel.monitoring.windows import WindowReport
    from keel.scheduler import PeriodicJob
    from keel.stores import Stores

__all__ = [
    "DECAY_NAMES",
    "FIGURE_NAMES",
    "MAX_WINDOW_S",
    "MIN_DRIFT_ROWS",
    "compute_figures",
    "figures_job",
    "figures_of",
    "forget_figures",
    "publish_figures",
    "published_figures",
    "refresh_figures",
]

_log = logging.getLogger(__name__)

_METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
DECAY_NAMES = tuple(f"{m}_decay" for m in _METRICS)
FIGURE_NAMES = (
    "request_count",
    "throughput_rps",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "missing_rate",
    "out_of_range_rate",
    "unseen_category_rate",
    "schema_violations",
    "drift_share",
    "drift_detected",
    *_METRICS,
    *DECAY_NAMES,
    "cpu_percent",
    "memory_rss_bytes",
)
MAX_WINDOW_S = 31 * 86_400.0
MIN_DRIFT_ROWS = 10  # sampled rows of the primary version before drift is a figure


def figures_of(report: WindowReport) -> dict[str, float]:
    """Return the figures of one ``WindowReport`` (see the module doc); absent ones left out."""
    out: dict[str, float] = {}
    health = report.health
    if health is not None and health.requests > 0:
        out["request_count"] = float(health.requests)
        out["throughput_rps"] = health.throughput_rps
        out["error_rate"] = health.error_rate
        for name in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
            value = getattr(health, name)
            if value is not None:
                out[name] = value
    if report.process is not None:
        if report.process.cpu_percent is not None:
            out["cpu_percent"] = report.process.cpu_percent
        if report.process.memory_rss_bytes is not None:
            out["memory_rss_bytes"] = float(report.process.memory_rss_bytes)
    primary = report.primary
    if primary is not None:
        quality = primary.quality
        if quality is not None:
            out["schema_violations"] = float(
                len(quality.missing_columns)
                + len(quality.extra_columns)
                + len(quality.type_changes)
            )
            if quality.columns:
                out["missing_rate"] = max(c.missing_rate for c in quality.columns)
                out["out_of_range_rate"] = max(c.out_of_range_rate for c in quality.columns)
                out["unseen_category_rate"] = max(c.unseen_rate for c in quality.columns)
        if primary.drift is not None and primary.sampled_rows >= MIN_DRIFT_ROWS:
            out["drift_share"] = primary.drift.share
            out["drift_detected"] = 1.0 if primary.drift.dataset_drifted else 0.0
        if primary.performance is not None:
            out.update(primary.performance.metrics)
        if primary.decay is not None:
            out.update({f"{m}_decay": v for m, v in primary.decay.decay.items()})
    return {k: float(v) for k, v in out.items() if k in FIGURE_NAMES and math.isfinite(v)}


def check_window_s(window_s: object) -> float:
    """Return a window length in seconds: a finite number from 1 s to 31 days."""
    if isinstance(window_s, bool) or not isinstance(window_s, int | float):
        raise InvalidInput(f"window_s must be a number of seconds, not {window_s!r}")
    if not math.isfinite(window_s) or not 1.0 <= window_s <= MAX_WINDOW_S:
        raise InvalidInput(
            f"window_s must be from 1 second to 31 days ({MAX_WINDOW_S:.0f} s), not {window_s!r}"
        )
    return float(window_s)


def compute_figures(
    stores: Stores,
    deployment: str,
    *,
    window_s: float,
    now_ms: int | None = None,
    tolerance: float = 0.05,
) -> dict[str, float]:
    """Return the figures of the window [now − window_s, now) by name (see the module doc).

    A deployment without traffic in the window that the store does not know is a
    ``NotFound``; a window outside 1 s – 31 days an
    ``InvalidInput``.
    """
    import time

    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.windows import compute_window
    from keel.monitoring.windows_sources import load_inputs

    check_deployment_name(deployment)
    length_ms = round(check_window_s(window_s) * 1000)
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if isinstance(now_ms, bool) or not isinstance(now_ms, int) or now_ms < length_ms:
        raise InvalidInput(f"now_ms must be ms since the epoch after one window, not {now_ms!r}")
    start = now_ms - length_ms
    data = load_inputs(stores, deployment, start, now_ms)
    report = compute_window(
        data.frame,
        start=start,
        end=now_ms,
        references=data.references,
        offline=data.offline,
        samples=data.samples,
        tolerance=tolerance,
        deployment=deployment,
    )
    return figures_of(report)


_HELP = {
    "request_count": "Requests in the latest window.",
    "throughput_rps": "Requests per second in the latest window.",
    "error_rate": "Share of requests that failed (status >= 500) in the latest window.",
    "latency_p50_ms": "Median latency of answered requests, ms, latest window.",
    "latency_p95_ms": "95th percentile latency of answered requests, ms, latest window.",
    "latency_p99_ms": "99th percentile latency of answered requests, ms, latest window.",
    "missing_rate": "Worst input column's share of missing values, latest window.",
    "out_of_range_rate": "Worst input column's share of values outside the reference range.",
    "unseen_category_rate": "Worst input column's share of categories the reference lacks.",
    "schema_violations": "Missing, extra and retyped input columns against the reference.",
    "drift_share": "Share of input columns that drifted from the reference.",
    "drift_detected": "1 when the inputs drifted as a dataset, else 0.",
    "cpu_percent": "Mean CPU of the serving process, percent of one core, latest window.",
    "memory_rss_bytes": "Peak resident memory of the serving process, latest window.",
}


class _FigureCollector:
    """Gauges read at scrape time from the figures last published per deployment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._figures: dict[str, dict[str, float]] = {}

    def publish(self, deployment: str, figures: Mapping[str, float]) -> None:
        with self._lock:
            self._figures[deployment] = {k: float(v) for k, v in figures.items()}

    def forget(self, deployment: str | None = None) -> None:
        with self._lock:
            if deployment is None:
                self._figures.clear()
            else:
                self._figures.pop(deployment, None)

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {d: dict(f) for d, f in self._figures.items()}

    def describe(self) -> list[Any]:
        return []  # the families depend on what was published; their names are all distinct

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        figures = self.snapshot()
        for name in FIGURE_NAMES:
            rows = [(d, f[name]) for d, f in sorted(figures.items()) if name in f]
            if not rows:
                continue
            metric = name[: -len("_decay")] if name.endswith("_decay") else name
            text = _HELP.get(name) or (
                f"Offline minus live {metric} (positive = worse)."
                if name.endswith("_decay")
                else f"Live {metric} over the latest window's rows with feedback."
            )
            family = GaugeMetricFamily(f"keel_monitor_{name}", text, labels=["deployment"])
            for deployment, value in rows:
                family.add_metric([deployment], value)
            yield family


_REGISTER_LOCK = threading.Lock()


@cache
def _registered() -> _FigureCollector:
    from prometheus_client import REGISTRY

    collector = _FigureCollector()
    REGISTRY.register(collector)  # type: ignore[arg-type]
    return collector


def _collector() -> _FigureCollector:
    # functools.cache does not stop two threads from both calling the function: the lock
    # makes the collector register once, or /metrics would show every gauge twice.
    with _REGISTER_LOCK:
        return _registered()


def publish_figures(deployment: str, figures: Mapping[str, float]) -> None:
    """Export ``figures`` as the deployment's ``keel_monitor_*`` gauges (replacing the last)."""
    _collector().publish(deployment, figures)


def forget_figures(deployment: str | None = None) -> None:
    """Drop one deployment's gauges (or every deployment's)."""
    _collector().forget(deployment)


def published_figures() -> dict[str, dict[str, float]]:
    """Return the figures last published, by deployment."""
    return _collector().snapshot()


def refresh_figures(stores: Stores, *, window_s: float) -> dict[str, dict[str, float]]:
    """Recompute and publish every deployment's figures; return them by deployment.

    A deployment whose figures fail is logged and keeps no stale gauges; the others are
    still published, then the first failure is raised so the scheduler counts it.
    """
    window_s = check_window_s(window_s)
    names = [d.name for d in stores.deployments.list_deployments()]
    out: dict[str, dict[str, float]] = {}
    failed: Exception | None = None
    for name in names:
        try:
            out[name] = compute_figures(stores, name, window_s=window_s)
        except Exception as exc:  # noqa: BLE001 - one deployment's failure is reported, not fatal
            _log.exception("monitoring figures of deployment %r failed", name)
            failed = failed or exc
            forget_figures(name)
            continue
        publish_figures(name, out[name])
    for gone in set(published_figures()) - set(names):
        forget_figures(gone)
    if failed is not None:
        raise failed
    return out


def figures_job(stores: Stores, *, window_s: float = 300.0, every_s: float = 30.0) -> PeriodicJob:
    """Return the job that refreshes the ``keel_monitor_*`` gauges every ``every_s`` s."""
    from keel.scheduler import PeriodicJob

    window_s = check_window_s(window_s)

    def run() -> None:
        refresh_figures(stores, window_s=window_s)

    return PeriodicJob("monitoring.figures", every_s, run, exclusive=False)
