"""The web UI in a real browser: headless Debian Chromium, driven by Playwright, against a
live server on 127.0.0.1, clicking through every page and checking what a person sees.

On failure the page's screenshot is saved under the pytest temporary folder
(``ui-screenshots/``) and its path printed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("ui-browser")]

HOSTILE = "<script>alert(1)</script>"


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _run_names(page: Any) -> list[str]:
    return page.locator("table.runs tbody tr td:nth-child(2) a").all_inner_texts()


def test_experiments_runs_table_sort_filter_next_page_and_columns(page, live_url) -> None:
    expect = _expect()
    page.goto(live_url + "/")
    expect(page.locator("h1")).to_have_text("Experiments")
    expect(page.get_by_role("link", name=HOSTILE)).to_be_visible()  # shown as text
    page.get_by_role("link", name="iris-sweep").click()

    expect(page.locator("h1")).to_have_text("iris-sweep")
    expect(page.locator("table.runs tbody tr")).to_have_count(50)
    expect(page.get_by_text("Runs 1–50")).to_be_visible()

    page.get_by_role("link", name="accuracy", exact=True).click()
    expect(page.locator("th a.sort.active")).to_have_text(re.compile(r"accuracy\s*▼"))
    assert _run_names(page)[:2] == ["final-model", "sweep-61"]
    page.get_by_role("link", name=re.compile(r"^accuracy")).click()
    expect(page.locator("th a.sort.active")).to_have_text(re.compile(r"accuracy\s*▲"))
    assert _run_names(page)[0] == HOSTILE

    page.get_by_role("link", name="Next page →").click()
    expect(page.get_by_text("Runs 51–64")).to_be_visible()
    expect(page.locator("table.runs tbody tr")).to_have_count(14)
    page.get_by_role("link", name="← Previous").click()
    expect(page.get_by_text("Runs 1–50")).to_be_visible()

    box = page.get_by_role("searchbox", name="Filter runs")
    box.fill("params.solver = 'saga' and metrics.accuracy > 0.8")
    box.press("Enter")
    expect(page.locator("table.runs tbody tr")).to_have_count(14)  # sweep-34, 36, … 60
    assert all(int(n.split("-")[1]) % 2 == 0 for n in _run_names(page))
    box = page.get_by_role("searchbox", name="Filter runs")
    box.fill("metrics.accuracy >>> 1")
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("filter")
    expect(page.get_by_text("No runs match.")).to_be_visible()

    page.get_by_role("link", name="Clear").click()
    page.locator("#column-picker summary").click()
    picker = page.locator("#column-picker")
    expect(picker.locator(".picker-status")).to_contain_text("of 36 keys")
    picker.get_by_role("searchbox", name="Search keys").fill("m05")
    expect(picker.locator(".picker-list li")).to_have_count(1)
    picker.get_by_label("extra/m05").check()
    picker.get_by_role("button", name="Show columns").click()
    expect(page.locator("table.runs thead")).to_contain_text("extra/m05")
    expect(page.locator("table.runs thead")).to_contain_text("accuracy")
    assert "columns=" in page.url


def test_a_run_shows_its_charts_params_and_downloads_an_artifact(page, live_url, seeded) -> None:
    expect = _expect()
    page.goto(f"{live_url}/experiments/{seeded.experiment_id}")
    page.get_by_role("link", name="final-model").click()
    expect(page.locator("h1")).to_contain_text("final-model")
    expect(page.locator("#chart-0 svg.main-svg").first).to_be_visible()
    expect(page.locator(".chart")).to_have_count(1)  # accuracy has one point: table only
    expect(page.locator("#chart-0 .gtitle")).to_have_text("loss")
    expect(page.locator("#chart-0 .scatterlayer .trace path.js-line")).to_have_count(1)
    expect(page.locator("#params")).to_contain_text("solver")
    expect(page.locator("#inputs")).to_contain_text("iris")
    with page.expect_download() as info:
        page.get_by_role("link", name="notes/readme.txt").click()
    download = info.value
    assert download.suggested_filename == "readme.txt"
    assert Path(download.path()).read_text() == "features: sepal and petal sizes\n"


def test_select_two_runs_and_compare_them(page, live_url, seeded) -> None:
    expect = _expect()
    page.goto(f"{live_url}/experiments/{seeded.experiment_id}")
    button = page.get_by_role("button", name=re.compile("Compare selected"))
    expect(button).to_be_disabled()
    page.get_by_label("Select sweep-40").check()
    page.get_by_label("Select sweep-41").check()
    expect(button).to_have_text("Compare selected (2)")
    button.click()

    expect(page.locator("h1")).to_have_text("Compare 2 runs")
    rows = page.locator("#compare-params tbody tr")
    c_row = rows.filter(has=page.locator("td:first-child", has_text=re.compile(r"^C\b")))
    expect(c_row).to_have_class("differs")
    expect(c_row.get_by_text("differs")).to_be_visible()
    expect(rows.filter(has_text="seed")).to_have_class("same")
    differs_bg = c_row.locator("td").nth(1).evaluate("e => getComputedStyle(e).backgroundColor")
    same_bg = (
        page.locator("#compare-params tr.same td")
        .nth(1)
        .evaluate("e => getComputedStyle(e).backgroundColor")
    )
    assert differs_bg != same_bg  # a person sees the difference
    expect(page.locator("#chart-0 svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-0 .scatterlayer .trace")).to_have_count(2)
    expect(page.locator("#chart-0 .legend")).to_contain_text("sweep-40")


def test_models_model_version_card_and_its_run(page, live_url, seeded) -> None:
    expect = _expect()
    page.goto(live_url + "/")
    page.get_by_role("navigation").get_by_role("link", name="Models").click()
    expect(page.locator("h1")).to_have_text("Registered models")
    expect(page.get_by_text("@champion → v1")).to_be_visible()
    page.get_by_role("link", name="iris-classifier").click()
    expect(page.locator("#aliases")).to_contain_text("@champion")
    page.locator("#versions").get_by_role("link", name="v1").click()

    expect(page.locator("h1")).to_contain_text("iris-classifier v1")
    card = page.locator("#model-card")
    expect(card).to_contain_text("Not for medical use")
    expect(card.locator("strong", has_text="Not")).to_be_visible()
    expect(card).to_contain_text(HOSTILE)  # user HTML shows as text, and runs nothing
    expect(card).to_contain_text("<img src=x onerror=alert(2)>")
    assert card.locator("img, script").count() == 0
    page.locator("#run-link").click()
    expect(page.locator("h1")).to_contain_text("final-model")
    assert page.url.endswith(f"/runs/{seeded.model_run_id}")


def test_the_audit_log_filters_and_verifies(page, live_url) -> None:
    expect = _expect()
    page.goto(live_url + "/")
    page.get_by_role("link", name="Audit log").click()
    expect(page.locator("h1")).to_have_text("Audit log")
    expect(page.locator("#audit tbody tr").first).to_be_visible()
    page.get_by_label("Action").fill("alias")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#audit tbody tr")).to_have_count(1)
    expect(page.locator("#audit")).to_contain_text("alias.set")
    page.get_by_role("button", name="Verify chain").click()
    expect(page.get_by_role("status")).to_contain_text("The chain checks out")


def test_unknown_pages_and_a_hostile_run_are_safe(page, live_url, seeded) -> None:
    expect = _expect()
    page.goto(f"{live_url}/runs/{seeded.hostile_run_id}")
    expect(page.locator("h1")).to_contain_text(HOSTILE)
    expect(page.locator("#tags")).to_contain_text(HOSTILE)
    page.goto(f"{live_url}/runs/{'0' * 32}")
    expect(page.locator("h1")).to_have_text("Not found")
    page.get_by_role("link", name="Back to the experiments").click()
    expect(page.locator("h1")).to_have_text("Experiments")


def test_login_with_a_token_when_auth_is_on(browser, seeded) -> None:
    from keel.config import load_settings
    from keel.server import create_app
    from keel.server.serving import serving

    expect = _expect()
    app = create_app(settings=load_settings(seeded.home))
    app.state.ui_authenticate = lambda token: "alice" if token == "kt_secret" else None
    with serving(app) as url:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(url + "/models")
            expect(page.locator("h1")).to_have_text("Log in to Keel")
            page.get_by_label("API token").fill("wrong")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_contain_text("not valid")
            page.get_by_label("API token").fill("kt_secret")
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("h1")).to_have_text("Registered models")
            cookie = next(c for c in context.cookies() if c["name"] == "keel_token")
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Strict"
            page.get_by_role("button", name="Log out").click()
            expect(page.locator("h1")).to_have_text("Log in to Keel")
        finally:
            context.close()
