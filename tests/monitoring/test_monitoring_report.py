"""``monitoring_report``: its numbers against ``monitor_windows``, ``drift`` and numpy on the
same logged traffic, its alerts, its JSON, and bad input.

The home (``report_support``) holds two deployments of ``cancer`` version 1 with 24 hours of
traffic logged through the real prediction logger: ``churn-prod`` drifts from hour 12 on and
has an alert rule on ``drift_share`` that a real evaluation pass fired; ``calm-prod`` does
not drift.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from monitor_live_support import keel_home
from report_support import (
    ALERT_RULE,
    DRIFT_FROM_HOUR,
    END,
    HOUR,
    PER_HOUR,
    Traffic,
    seed_report_home,
)

from keel.errors import InvalidInput, NotFound


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return seed_report_home(tmp_path_factory.mktemp("report-home"))


def _report(seeded: dict[str, Any], name: str = "churn-prod", **kw: Any) -> Any:
    from keel.monitoring import monitoring_report

    with keel_home(seeded["home"].path):
        return monitoring_report(name, **{"end": END, **kw})


def test_summary_matches_the_log_and_drift(seeded: dict[str, Any]) -> None:
    from keel.monitoring import drift, read_predictions, reference_profile
    from keel.monitoring.windows_data import inputs_of

    traffic: Traffic = seeded["churn"]
    report = _report(seeded)
    assert (report.start_ms, report.end_ms, report.bucket_ms) == (END - 24 * HOUR, END, HOUR)
    summary = report.summary()
    assert summary["requests"] == traffic.requests
    figures = summary["figures"]
    assert figures["error_rate"] == pytest.approx(traffic.failed / traffic.requests)
    with keel_home(seeded["home"].path):
        log = read_predictions("churn-prod", start=report.start_ms, end=END)
        reference = reference_profile("models:/cancer/1")
    answered = log[log["status"] == 200].groupby("request_id")["latency_ms"].first()
    for q in (50, 95, 99):
        assert figures[f"latency_p{q}_ms"] == pytest.approx(float(np.percentile(answered, q)))
    expected = drift(reference, inputs_of(log))
    assert summary["drift"]["share"] == pytest.approx(expected.share)
    assert summary["drift"]["dataset_drifted"] is expected.dataset_drifted is True
    assert (summary["model"], summary["version"]) == ("cancer", "1")
    assert summary["performance"]["rows"] == (traffic.requests - traffic.failed) * 4
    assert "accuracy" in summary["performance"]["metrics"]
    assert summary["quality"]["rows"] == len(inputs_of(log))


def test_distributions_are_the_windows_drift_distributions(seeded: dict[str, Any]) -> None:
    report = _report(seeded)
    columns = report.summary()["drift"]["columns"]
    dists = report.distributions()
    assert [d["column"] for d in dists] == [f"f{j}" for j in range(8)]
    rows = (seeded["churn"].requests - seeded["churn"].failed) * 4
    for d in dists:
        assert sum(d["current"]) == d["n_current"] == rows
        assert sum(d["reference"]) == d["n_reference"]
        assert len(d["labels"]) == len(d["reference"]) == len(d["current"])
        assert d["drifted"] == columns[d["column"]]["drifted"]
        assert d["statistic"] == pytest.approx(columns[d["column"]]["statistic"])


def test_timeline_is_monitor_windows_per_bucket(seeded: dict[str, Any]) -> None:
    from keel.monitoring import monitor_windows
    from keel.monitoring.figures import figures_of

    report = _report(seeded)
    with keel_home(seeded["home"].path):
        windows = monitor_windows("churn-prod", window="1h", start=report.start_ms, end=END)
    rows = report.timeline_rows()
    assert len(rows) == len(windows) == 24
    for row, window in zip(rows, windows, strict=True):
        assert (row["start_ms"], row["end_ms"]) == (window.start_ms, window.end_ms)
        assert row["figures"] == pytest.approx(figures_of(window))
        assert row["figures"]["request_count"] == PER_HOUR
    # Drift starts at hour 12: every later bucket's share is above every earlier one's.
    shares = [r["figures"]["drift_share"] for r in rows]
    assert max(shares[:DRIFT_FROM_HOUR]) < 0.5 <= min(shares[DRIFT_FROM_HOUR:])
    assert set(rows[-1]["columns"]) == {f"f{j}" for j in range(8)}


def test_bucket_is_the_window_over_24_or_given(seeded: dict[str, Any]) -> None:
    assert _report(seeded, window="1h").bucket_ms == 150_000
    six = _report(seeded, window="24h", bucket="6h")
    assert six.bucket_ms == 6 * HOUR
    rows = six.timeline_rows()
    # Buckets are aligned to the epoch, as monitor_windows aligns windows: the day before
    # END (not on a 6-hour boundary) spans five of them, the first and last cut short.
    assert all(r["start_ms"] % (6 * HOUR) == 0 for r in rows)
    assert len(rows) == 5
    assert sum(r["figures"]["request_count"] for r in rows) == 24 * PER_HOUR


def test_calm_deployment_does_not_drift_and_has_no_alerts(seeded: dict[str, Any]) -> None:
    report = _report(seeded, "calm-prod")
    summary = report.summary()
    assert summary["drift"]["dataset_drifted"] is False
    assert report.alerts == ()
    assert summary["alerts_fired"] == 0


def test_fired_alert_is_in_the_report_with_its_events(seeded: dict[str, Any]) -> None:
    report = _report(seeded)
    (alert,) = report.alerts
    assert (alert.rule, alert.state.value) == (ALERT_RULE, "firing")
    assert alert.deployment == "churn-prod"
    assert alert.value == pytest.approx(1.0)
    assert report.summary()["alerts_fired"] == 1
    kinds = [e.kind for e in report.events[alert.alert_id]]
    assert "firing" in kinds
    # A window that ended before the alert started does not show it.
    assert _report(seeded, window="1h").alerts == (alert,)
    with keel_home(seeded["home"].path):
        from keel.monitoring import monitoring_report

        earlier = monitoring_report("churn-prod", window="1h", end=END - 2 * HOUR)
    assert earlier.alerts == ()


def test_to_dict_round_trips_through_json(seeded: dict[str, Any]) -> None:
    data = _report(seeded).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["summary"]["requests"] == seeded["churn"].requests
    assert len(data["timeline"]) == 24
    assert data["alerts"][0]["events"]


def test_empty_log_is_an_empty_report(seeded: dict[str, Any]) -> None:
    from keel.monitoring.report_html import report_html

    with keel_home(seeded["home"].path):
        from keel.monitoring import monitoring_report

        report = monitoring_report("calm-prod", window="1h", end=END - 30 * HOUR)
    assert report.empty
    data = report.to_dict()
    assert data["empty"] is True
    assert data["summary"]["requests"] == 0
    assert data["distributions"] == []
    assert data["timeline"] == []
    assert "No traffic was logged" in report_html(report)


@pytest.mark.parametrize("window", ["0h", "-1d", "abc", "", "400d", "99999999999999d", True])
def test_bad_windows_are_invalid_input(seeded: dict[str, Any], window: Any) -> None:
    with pytest.raises(InvalidInput, match="window"):
        _report(seeded, window=window)


@pytest.mark.parametrize(
    ("window", "bucket", "match"),
    [("1h", "2h", "longer than the window"), ("7d", "1s", "more than 10,000"),
     ("1h", "0m", "bucket"), ("1h", "soon", "bucket")],
)  # fmt: skip
def test_bad_buckets_are_invalid_input(
    seeded: dict[str, Any], window: str, bucket: str, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        _report(seeded, window=window, bucket=bucket)


def test_unknown_and_hostile_deployments(seeded: dict[str, Any]) -> None:
    with pytest.raises(NotFound, match="no-such-dep"):
        _report(seeded, "no-such-dep")
    with pytest.raises(InvalidInput, match="deployment name"):
        _report(seeded, "<script>alert(1)</script>")
    with pytest.raises(InvalidInput, match="end"):
        _report(seeded, end=-5)


def test_the_longest_window_is_a_year(seeded: dict[str, Any]) -> None:
    report = _report(seeded, window="366d")
    assert report.end_ms - report.start_ms == 366 * 86_400_000
    assert report.bucket_ms == 366 * 86_400_000 // 24
    assert report.summary()["requests"] == seeded["churn"].requests
    assert sum(r["figures"]["request_count"] for r in report.timeline_rows()) == 144
