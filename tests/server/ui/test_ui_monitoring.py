"""A deployment's monitoring page through the app (TestClient): the summary, the charts'
containers and data, the distributions, the alerts with their events, the window selector,
the link from the deployment page, the empty state, and bad input as 400 and 404 pages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from monitoring_support import HISTORY_HOURS, RULE, SERVED, MonitoringHome, seed_monitoring
from tests.monitoring.report_support import PER_HOUR

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoringHome]:
    from tests.conftest import _reset

    yield seed_monitoring(tmp_path_factory.mktemp("monitoring-ui") / "keel-home")
    _reset()


@pytest.fixture(scope="module")
def client(seeded: MonitoringHome) -> Any:
    import warnings

    with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from keel.config import load_settings
    from keel.server import create_app

    return TestClient(create_app(settings=load_settings(seeded.home)))


def _data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert found is not None
    return json.loads(found.group(1))


def test_deployment_page_links_to_monitoring(client: Any) -> None:
    page = client.get("/deployments/churn-prod")
    assert page.status_code == 200
    assert 'href="/deployments/churn-prod/monitoring"' in page.text


def test_monitoring_page_shows_summary_charts_distributions_and_alert(client: Any) -> None:
    answer = client.get("/deployments/churn-prod/monitoring")
    assert answer.status_code == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    page = answer.text
    assert '<a href="?window=24h" class="active" aria-current="page">24h</a>' in page
    for w in ("1h", "7d"):
        assert f'href="?window={w}"' in page
    summary = unescape(page[page.index('id="summary"') : page.index("</table>")])
    assert "Requests" in summary
    assert "Latency p99" in summary
    assert "dataset drift" in summary
    assert "Live accuracy" in summary
    for chart in ("chart-drift-share", "chart-drift-columns", "chart-latency", "chart-errors",
                  "chart-throughput", "chart-performance"):  # fmt: skip
        assert f'id="{chart}"' in page
    for j in range(8):
        assert f'id="dist-{j}"' in page
    assert re.search(r'<script src="/static/plotly/[^"]+/plotly\.min\.js"></script>', page)
    assert '<script src="/static/monitoring.js' in page
    data = _data(page)
    assert data["deployment"] == "churn-prod"
    assert data["summary"]["requests"] == HISTORY_HOURS * PER_HOUR + SERVED
    assert data["summary"]["drift"]["dataset_drifted"] is True
    assert len(data["timeline"]) >= HISTORY_HOURS
    alerts = page[page.index('id="alerts"') :]
    assert RULE in alerts
    assert 'class="state-firing">firing' in alerts
    assert "drift_share" in alerts
    assert "recent events" in alerts


def test_calm_deployment_has_no_drift_and_no_alerts(client: Any) -> None:
    page = client.get("/deployments/calm-prod/monitoring?window=1h").text
    data = _data(page)
    assert data["summary"]["drift"]["dataset_drifted"] is False
    assert data["summary"]["requests"] >= 6
    assert 'id="no-alerts"' in page
    assert '<a href="?window=1h" class="active"' in page


def test_window_selector_changes_the_window(client: Any) -> None:
    week = _data(client.get("/deployments/churn-prod/monitoring?window=7d").text)
    hour = _data(client.get("/deployments/churn-prod/monitoring?window=1h").text)
    assert week["end_ms"] - week["start_ms"] == 7 * 86_400_000
    assert week["bucket_ms"] == 7 * 3_600_000
    assert hour["end_ms"] - hour["start_ms"] == 3_600_000
    assert hour["summary"]["requests"] < week["summary"]["requests"]
    other = client.get("/deployments/churn-prod/monitoring?window=90m")
    assert other.status_code == 200
    assert 'class="active" aria-current="page" href="?window=90m"' in other.text


def test_no_traffic_shows_an_empty_state(client: Any) -> None:
    page = client.get("/deployments/quiet-prod/monitoring")
    assert page.status_code == 200
    assert 'id="empty-state"' in page.text
    assert "No traffic logged for quiet-prod" in page.text
    assert 'id="report-data"' not in page.text
    assert "plotly.min.js" not in page.text


@pytest.mark.parametrize("window", ["0h", "-1d", "abc", "", "32d", "400d", "9" * 30 + "d"])
def test_bad_windows_are_the_400_page(client: Any, window: str) -> None:
    page = client.get("/deployments/churn-prod/monitoring", params={"window": window})
    assert page.status_code == 400
    assert "Bad request" in page.text
    assert "window" in page.text
    assert "Traceback" not in page.text


def test_unknown_and_hostile_names_are_escaped_404_and_400(client: Any) -> None:
    unknown = client.get("/deployments/no-such-dep/monitoring")
    assert unknown.status_code == 404
    assert "no-such-dep" in unknown.text
    hostile = client.get("/deployments/<img src=x onerror=alert(2)>/monitoring")
    assert hostile.status_code == 404
    assert "<img src=x" not in hostile.text
    assert "&lt;img src=x onerror=alert(2)&gt;" in hostile.text
    window = client.get(
        "/deployments/churn-prod/monitoring", params={"window": "<script>alert(1)</script>"}
    )
    assert window.status_code == 400
    assert "<script>alert(1)" not in window.text
    assert ESCAPED in window.text
    huge = client.get("/deployments/churn-prod/monitoring", params={"window": "x" * 5000})
    assert huge.status_code == 400


def test_monitoring_script_is_served(client: Any) -> None:
    script = client.get("/static/monitoring.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "report-data" in script.text
    assert client.get("/static/monitoring.css").status_code == 200
