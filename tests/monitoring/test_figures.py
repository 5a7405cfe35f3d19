"""keel.monitoring.figures: the latest window's figures by name, and their Prometheus gauges."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from windows_support import HOUR, T0, log_frame, reference

from keel.errors import InvalidInput
from keel.monitoring.figures import (
    DECAY_NAMES,
    FIGURE_NAMES,
    check_window_s,
    figures_of,
    forget_figures,
    publish_figures,
    published_figures,
)
from keel.monitoring.windows import compute_window


@pytest.fixture(autouse=True)
def _no_published_figures():
    """Start and end each test with no gauges: the registry is the process's, and a server
    another test started on this worker may have published its deployments' figures."""
    forget_figures()
    yield
    forget_figures()


def _report(frame: pd.DataFrame, **kwargs: object):
    return compute_window(
        frame,
        start=T0,
        end=T0 + HOUR,
        references={("churn", "1"): reference()},
        offline={("churn", "1"): {"accuracy": 0.97, "f1": 0.95}},
        **kwargs,  # type: ignore[arg-type]
    )


def test_names_are_the_documented_ones() -> None:
    assert len(set(FIGURE_NAMES)) == len(FIGURE_NAMES)
    for name in ("request_count", "drift_detected", "roc_auc", "r2", "memory_rss_bytes"):
        assert name in FIGURE_NAMES
    assert set(DECAY_NAMES) <= set(FIGURE_NAMES)
    import keel.monitoring.figures as module

    for name in FIGURE_NAMES:  # each is documented in the module doc
        base = name[: -len("_decay")] if name.endswith("_decay") else name
        assert f"``{base}``" in (module.__doc__ or "")


def test_figures_of_a_window_match_its_report() -> None:
    frame = log_frame(300, seed=40, error_every=6)
    frame.loc[frame.index[:90], "input.y"] = np.nan
    samples = pd.DataFrame(
        {"time_ms": [T0 + 10], "process": ["h:1"], "cpu_percent": [12.5],
         "memory_rss_bytes": [1 << 28]}
    )  # fmt: skip
    report = _report(frame, samples=samples)
    figures = figures_of(report)
    health, version = report.health, report.primary
    assert health is not None
    assert version is not None
    assert figures["request_count"] == 300
    assert figures["error_rate"] == pytest.approx(health.error_rate)
    assert figures["latency_p99_ms"] == pytest.approx(health.latency_p99_ms)
    assert figures["throughput_rps"] == pytest.approx(300 / 3600)
    assert version.quality is not None
    worst = max(c.missing_rate for c in version.quality.columns)
    assert figures["missing_rate"] == pytest.approx(worst)
    assert figures["schema_violations"] == 0
    assert version.drift is not None
    assert figures["drift_share"] == version.drift.share
    assert figures["drift_detected"] in (0.0, 1.0)
    assert version.performance is not None
    assert figures["accuracy"] == version.performance.metrics["accuracy"]
    assert figures["accuracy_decay"] == pytest.approx(0.97 - figures["accuracy"])
    assert figures["cpu_percent"] == 12.5
    assert figures["memory_rss_bytes"] == 1 << 28
    assert set(figures) <= set(FIGURE_NAMES)
    assert all(math.isfinite(v) for v in figures.values())


def test_absent_figures_are_left_out_never_zero() -> None:
    empty = compute_window(log_frame(1, seed=41).iloc[0:0], start=T0, end=T0 + HOUR)
    assert figures_of(empty) == {}
    unlabelled = figures_of(_report(log_frame(50, seed=42, labelled=0.0)))
    assert "accuracy" not in unlabelled
    assert "accuracy_decay" not in unlabelled
    assert "cpu_percent" not in unlabelled
    assert unlabelled["request_count"] == 50
    failures = figures_of(_report(log_frame(20, seed=43, error_every=1)))
    assert failures["error_rate"] == 1.0
    assert "latency_p50_ms" not in failures
    assert "drift_share" not in failures  # no answered, sampled row to compare


def test_schema_violations_are_counted() -> None:
    frame = log_frame(40, seed=44).drop(columns=["input.y"])
    frame["input.new"] = 3
    assert figures_of(_report(frame))["schema_violations"] == 2


@pytest.mark.parametrize("bad", [0, -1, 0.5, math.nan, math.inf, 40 * 86_400, "300", True, None])
def test_window_s_is_checked(bad: object) -> None:
    with pytest.raises(InvalidInput, match="window_s"):
        check_window_s(bad)


def _scrape() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(generate_latest(REGISTRY).decode()):
        if family.name.startswith("keel_monitor_"):
            for sample in family.samples:
                out.setdefault(sample.name, {})[sample.labels["deployment"]] = sample.value
    return out


def test_published_figures_are_gauges_on_the_default_registry() -> None:
    try:
        publish_figures("churn-prod", {"error_rate": 0.25, "accuracy_decay": 0.1})
        publish_figures("fraud-prod", {"error_rate": 0.0, "latency_p99_ms": 12.0})
        scraped = _scrape()
        assert scraped["keel_monitor_error_rate"] == {"churn-prod": 0.25, "fraud-prod": 0.0}
        assert scraped["keel_monitor_accuracy_decay"] == {"churn-prod": 0.1}
        assert scraped["keel_monitor_latency_p99_ms"] == {"fraud-prod": 12.0}
        publish_figures("churn-prod", {"request_count": 3})  # a figure that went absent goes
        assert "keel_monitor_error_rate" in _scrape()
        assert "churn-prod" not in _scrape()["keel_monitor_error_rate"]
        forget_figures("fraud-prod")
        assert set(published_figures()) == {"churn-prod"}
    finally:
        forget_figures()
    assert _scrape() == {}


def test_the_collector_registers_once_under_concurrent_publishers() -> None:
    from concurrent.futures import ThreadPoolExecutor

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: publish_figures(f"dep-{i}", {"error_rate": i / 10}), range(8)))
        families = [
            f
            for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())
            if f.name == "keel_monitor_error_rate"
        ]
        assert len(families) == 1
        assert len(families[0].samples) == 8
    finally:
        forget_figures()


def test_drift_is_no_figure_on_the_few_rows_a_draining_window_holds() -> None:
    from keel.monitoring.figures import MIN_DRIFT_ROWS

    few = _report(log_frame(MIN_DRIFT_ROWS - 1, rows_per_request=1, seed=45))
    assert few.primary is not None
    assert few.primary.drift is not None  # the report still shows it
    figures = figures_of(few)
    assert "drift_share" not in figures  # absent, so an alert on it keeps its state
    assert "drift_detected" not in figures
    assert figures["request_count"] == MIN_DRIFT_ROWS - 1
    enough = figures_of(_report(log_frame(MIN_DRIFT_ROWS, rows_per_request=1, seed=45)))
    assert 0.0 <= enough["drift_share"] <= 1.0
    assert enough["drift_detected"] in (0.0, 1.0)
