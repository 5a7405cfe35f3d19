"""The deployments pages in a real browser (headless Debian Chromium, Playwright) against a
live server on 127.0.0.1 serving deployments made through the controller and SQL store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from deployments_support import HOSTILE_MODEL, DeployHome, seed_deployments

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("ui-browser")]


@pytest.fixture(scope="module")
def deploy_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.conftest import _reset
    from tests.live_server import running_server

    home = tmp_path_factory.mktemp("deploy-ui-browser") / "keel-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(home))
        mp.delenv("KEEL_TRACKING_URI", raising=False)
        mp.delenv("KEEL_ARTIFACT_URI", raising=False)
        _reset()
        try:
            deployed: DeployHome = seed_deployments(home)
        finally:
            _reset()
    with running_server(deployed.home) as url:
        yield url
    _reset()


def test_deployments_list_detail_split_rollout_history_refresh_and_404(
    deploy_url: str, page: Any
) -> None:
    from playwright.sync_api import expect

    page.goto(deploy_url + "/")
    page.get_by_role("link", name="Deployments", exact=True).click()
    expect(page.locator("h1")).to_have_text("Deployments")
    expect(page.locator("header nav a.active")).to_have_text("Deployments")
    expect(page.locator("#deployments tbody tr")).to_have_count(5)
    expect(page.get_by_text(f"{HOSTILE_MODEL}/1 100%")).to_be_visible()  # text, no alert

    page.get_by_role("link", name="staging").first.click()
    expect(page.locator("h1")).to_contain_text("in staging")
    expect(page.locator("#deployments tbody tr")).to_have_count(2)
    page.get_by_role("link", name="All environments").click()

    page.get_by_role("link", name="churn-prod").click()
    expect(page.locator("h1")).to_contain_text("churn-prod")
    expect(page.locator("#deployment-status")).to_have_text("canary step 2/3")
    bar = page.get_by_role("img", name=re.compile("^Live traffic split"))
    expect(bar).to_have_attribute("aria-label", "Live traffic split: churn/1 50%, churn/2 50%")
    widths = [s.bounding_box()["width"] for s in bar.locator(".seg").all()]
    assert len(widths) == 2
    assert abs(widths[0] - widths[1]) < 2  # 50/50 drawn as two equal halves
    expect(page.locator("#rollout-progress")).to_have_text("step 2 of 3")
    expect(page.locator("ol.steps li.current")).to_have_text("50%")
    # The script counts down to the next step (due about two hours after it started).
    expect(page.locator("#next-step")).to_have_text(re.compile(r"UTC \(in \d+ h \d+ min\)$"))
    expect(page.locator("#gate-results tbody tr")).to_have_count(2)
    expect(page.locator("#history tbody tr")).to_have_count(3)
    expect(page.locator("#history tbody tr").first).to_contain_text("canary.step")

    # Auto-refresh is opt-in: ticked, the page reloads (a marker set on this page goes).
    page.evaluate("window.keelMarker = 1")
    with page.expect_navigation():  # the page's default bound (conftest)
        page.get_by_label("Refresh every 5 s").check()
    assert page.evaluate("window.keelMarker") is None
    expect(page.get_by_label("Refresh every 5 s")).to_be_checked()  # remembered
    page.get_by_label("Refresh every 5 s").uncheck()

    page.get_by_role("link", name="Deployments", exact=True).first.click()
    page.get_by_role("link", name="churn-ab").click()
    expect(page.locator("#ab-analysis .verdict")).to_have_text("winner: churn/3 at alpha 0.05")

    response = page.goto(deploy_url + "/deployments/no-such-deployment")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("alert")).to_contain_text("no deployment named 'no-such-deployment'")
