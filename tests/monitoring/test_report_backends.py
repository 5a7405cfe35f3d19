"""``monitoring_report`` on every metadata backend: SQLite, PostgreSQL and through a live
Keel server (the log read from the shared artifact store), the same numbers each time."""

from __future__ import annotations

import pytest
from report_support import DRIFT_FROM_HOUR, END, PER_HOUR, register_cancer, seed_traffic
from tests.conftest import KeelEnv


def test_report_is_the_same_on_every_backend(
    backend: KeelEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import _reset

    from keel.monitoring import monitor_windows, monitoring_report
    from keel.monitoring.alerts import add_alert_rule
    from keel.monitoring.figures import figures_of

    if backend.dialect == "rest":  # the server's artifact store, shared with this client
        monkeypatch.setenv(
            "KEEL_ARTIFACT_URI", str(backend.home.parent / "server-home" / "artifacts")
        )
        _reset()
    home = register_cancer()
    traffic = seed_traffic(home, "churn-prod", drift=True)
    add_alert_rule("churn-drift", deployment="churn-prod", metric="drift_share", op=">",
                   threshold=0.3)  # fmt: skip
    if backend.dialect != "rest":  # rules are evaluated next to the database (keel server)
        from keel.monitoring.alerts.runner import run_pass
        from keel.stores import current_stores

        assert not run_pass(current_stores(), now=END - 60_000).errors
    report = monitoring_report("churn-prod", window="24h", end=END)
    assert report.notes == {}
    summary = report.summary()
    assert summary["requests"] == traffic.requests
    assert summary["figures"]["error_rate"] == pytest.approx(traffic.failed / traffic.requests)
    assert summary["drift"]["dataset_drifted"] is True
    windows = monitor_windows("churn-prod", window="1h", start=report.start_ms, end=END)
    rows = report.timeline_rows()
    assert len(rows) == len(windows) == 24
    for row, window in zip(rows, windows, strict=True):
        assert row["figures"] == pytest.approx(figures_of(window))
    assert all(w["figures"]["request_count"] == PER_HOUR for w in report.timeline_rows())
    assert report.timeline_rows()[DRIFT_FROM_HOUR]["figures"]["drift_share"] >= 0.5
    fired = [a.rule for a in report.alerts]
    assert fired == ([] if backend.dialect == "rest" else ["churn-drift"])
