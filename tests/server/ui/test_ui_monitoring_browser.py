"""The monitoring page in a real browser (headless Debian Chromium, Playwright) against a
live server on 127.0.0.1, for deployments that served real traffic (``monitoring_support``):
a person opens the deployment, clicks Monitoring, sees the summary and the charts drawn,
switches the window and sees the alert; the page fixture fails on any script error or
Content-Security-Policy violation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from monitoring_support import RULE, seed_monitoring

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("ui-browser")]

OVER_TIME = ("chart-drift-share", "chart-drift-columns", "chart-latency", "chart-errors",
             "chart-throughput", "chart-performance")  # fmt: skip


@pytest.fixture(scope="module")
def monitoring_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.conftest import _reset
    from tests.live_server import running_server

    seeded = seed_monitoring(tmp_path_factory.mktemp("monitoring-browser") / "keel-home")
    with running_server(seeded.home) as url:
        yield url
    _reset()


def _charts_drawn(page: Any, ids: tuple[str, ...]) -> None:
    from playwright.sync_api import expect

    expect(page.locator("html[data-charts-drawn='true']")).to_have_count(1)
    for chart in ids:
        expect(page.locator(f"#{chart} svg.main-svg").first).to_be_visible()


def test_open_monitoring_see_summary_charts_switch_window_and_alert(
    monitoring_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    page.goto(monitoring_url + "/deployments")
    page.get_by_role("link", name="churn-prod").click()
    expect(page.locator("h1")).to_contain_text("churn-prod")
    page.get_by_role("link", name="Monitoring").click()
    expect(page).to_have_url(re.compile(r"/deployments/churn-prod/monitoring$"))
    expect(page.locator("h1")).to_contain_text("monitoring")
    summary = page.locator("#summary")
    expect(summary).to_contain_text("Requests")
    expect(summary).to_contain_text("dataset drift")
    expect(summary).to_contain_text("Live accuracy")
    _charts_drawn(page, OVER_TIME)
    expect(page.locator("#distributions .chart")).to_have_count(8)
    _charts_drawn(page, tuple(f"dist-{j}" for j in range(8)))
    # The drift chart has a point per bucket; the drift share reaches 100%.
    assert page.locator("#chart-drift-share .scatterlayer .point").count() >= 20
    alerts = page.locator("#alerts")
    expect(alerts).to_contain_text(RULE)
    expect(alerts.locator("td.state-firing")).to_have_text("firing")

    page.get_by_role("link", name="1h", exact=True).click()
    expect(page).to_have_url(re.compile(r"\?window=1h$"))
    expect(page.locator(".windows a.active")).to_have_text("1h")
    expect(page.locator("#period")).to_contain_text("The last 1h")
    _charts_drawn(page, OVER_TIME[:3])
    expect(page.locator("#alerts")).to_contain_text(RULE)
    page.locator("#alerts details.events summary").first.click()
    expect(page.locator("#alerts details.events table").first).to_contain_text("firing")

    page.get_by_role("link", name="7d", exact=True).click()
    expect(page.locator(".windows a.active")).to_have_text("7d")
    _charts_drawn(page, OVER_TIME[:1])


def test_calm_and_quiet_deployments_and_a_bad_window(monitoring_url: str, page: Any) -> None:
    from playwright.sync_api import expect

    page.goto(monitoring_url + "/deployments/calm-prod/monitoring")
    expect(page.locator("#summary")).to_contain_text("no dataset drift")
    expect(page.locator("#no-alerts")).to_be_visible()
    _charts_drawn(page, OVER_TIME[:2])

    page.goto(monitoring_url + "/deployments/quiet-prod/monitoring")
    expect(page.locator("#empty-state")).to_contain_text("No traffic logged for quiet-prod")
    expect(page.locator(".chart")).to_have_count(0)

    answer = page.goto(monitoring_url + "/deployments/churn-prod/monitoring?window=-1d")
    assert answer is not None
    assert answer.status == 400
    expect(page.locator("h1")).to_have_text("Bad request")
    expect(page.get_by_role("alert")).to_contain_text("window")
    answer = page.goto(monitoring_url + "/deployments/no-such-dep/monitoring")
    assert answer is not None
    assert answer.status == 404
