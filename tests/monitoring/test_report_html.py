"""The monitoring report as HTML and JSON: ``keel monitor report`` and ``report_html``.

The HTML is one file with no reference to anything outside it (no script or stylesheet
URL, no http(s) link), has each column's chart, escapes hostile names, and draws its
charts in a Chromium that has no network at all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from monitor_live_support import keel_home
from report_support import END, HOUR, seed_report_home
from typer.testing import CliRunner, Result

from keel.cli.main import app

HOSTILE = "<script>alert(1)</script>"
COLUMNS = [f"f{j}" for j in range(8)]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return seed_report_home(tmp_path_factory.mktemp("report-html-home"))


def keel_cli(seeded: dict[str, Any], *args: str) -> Result:
    with keel_home(seeded["home"].path):
        return CliRunner().invoke(app, ["monitor", "report", *args])


def _outside_references(page: str) -> list[str]:
    """Every tag attribute that would make the browser fetch or open something elsewhere.

    Script bodies are left out (Plotly's code holds attribution links as strings), and
    every script tag must be inline: a ``src`` on one is reported.
    """
    tags = re.findall(r"<script\b[^>]*>", page)
    markup = re.sub(r"<script\b[^>]*>.*?</script>", "", page, flags=re.S)
    found = [t for t in tags if "src" in t]
    found += re.findall(r"""<[a-z]+[^>]*\s(?:src|href)\s*=\s*["']?(?!#)[^"'\s>]*""", markup)
    return found


def test_cli_writes_one_self_contained_file(seeded: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = keel_cli(seeded, "--deployment", "churn-prod", "--window", "24h",
                      "--end", str(END), "-o", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    assert "Drift share" in result.output
    page = out.read_text(encoding="utf-8")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no partial file left
    assert _outside_references(page) == []
    assert "<link" not in page
    assert "Plotly" in page  # inlined, not fetched
    for j, column in enumerate(COLUMNS):
        assert f'id="dist-{j}"' in page
        assert f'id="col-{j}">{column} ' in page
    for chart in ("chart-drift-share", "chart-drift-columns", "chart-latency", "chart-errors"):
        assert f'id="{chart}"' in page
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert data["deployment"] == "churn-prod"
    assert data["summary"]["alerts_fired"] == 1
    assert "churn-drift" in page


def test_cli_json_round_trips(seeded: dict[str, Any]) -> None:
    from keel.monitoring import monitoring_report

    result = keel_cli(seeded, "-d", "churn-prod", "--end", str(END), "--json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    with keel_home(seeded["home"].path):
        expected = monitoring_report("churn-prod", end=END).to_dict()
    printed.pop("generated_at_ms")
    expected.pop("generated_at_ms")
    assert printed == expected
    assert len(printed["timeline"]) == 24


def test_cli_empty_window_says_so(seeded: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    end = str(END - 40 * HOUR)
    result = keel_cli(seeded, "-d", "calm-prod", "-w", "1h", "--end", end, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "no traffic logged" in result.output
    assert "No traffic was logged in this window" in out.read_text()


@pytest.mark.parametrize("window", ["0h", "-1d", "abc", "400d"])
def test_cli_bad_window_exits_2(seeded: dict[str, Any], window: str) -> None:
    result = keel_cli(seeded, "-d", "churn-prod", "--window", window)
    assert result.exit_code == 2, result.output
    assert "window" in result.output
    assert "Traceback" not in result.output


def test_cli_bad_deployment_and_output(seeded: dict[str, Any], tmp_path: Path) -> None:
    unknown = keel_cli(seeded, "-d", "no-such-deployment")
    assert unknown.exit_code != 0
    assert "no-such-deployment" in unknown.output
    hostile = keel_cli(seeded, "-d", "../../etc/passwd")
    assert hostile.exit_code == 2
    folder = keel_cli(seeded, "-d", "churn-prod", "-o", str(tmp_path))
    assert folder.exit_code == 2
    assert "is a folder" in folder.output
    nowhere = keel_cli(seeded, "-d", "churn-prod", "-o", str(tmp_path / "no" / "r.html"))
    assert nowhere.exit_code == 2
    bucket = keel_cli(seeded, "-d", "churn-prod", "-w", "1h", "--bucket", "2h")
    assert bucket.exit_code == 2
    assert "longer than the window" in bucket.output


def test_hostile_column_names_are_escaped() -> None:
    from windows_support import T0, log_frame, training_frame

    from keel.monitoring import profile
    from keel.monitoring.report import MonitoringReport
    from keel.monitoring.report_html import report_html
    from keel.monitoring.windows import compute_window

    reference = profile(training_frame().rename(columns={"colour": HOSTILE}))
    frame = log_frame(40, shift=2.0).rename(columns={"input.colour": f"input.{HOSTILE}"})
    frame[f"input.{HOSTILE}"] = frame[f"input.{HOSTILE}"].where(
        frame.index % 2 == 0, "<img src=x onerror=alert(2)>"
    )
    overall = compute_window(frame, start=T0, end=T0 + HOUR, references={("churn", "1"): reference})
    report = MonitoringReport(
        deployment="churn-prod", window="1h", start_ms=T0, end_ms=T0 + HOUR,
        bucket_ms=150_000, overall=overall,
    )  # fmt: skip
    page = report_html(report)
    assert HOSTILE not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert _outside_references(page) == []
    assert json.loads(json.dumps(report.to_dict()))["distributions"]


@pytest.mark.browser
def test_report_opens_offline_and_draws_every_chart(seeded: dict[str, Any], tmp_path: Path) -> None:
    from tests.server.ui.conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.is_file():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    out = tmp_path / "report.html"
    result = keel_cli(seeded, "-d", "churn-prod", "--end", str(END), "-o", str(out))
    assert result.exit_code == 0, result.output
    requests: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.goto(out.as_uri())
            page.wait_for_selector("html[data-charts-drawn='true']", timeout=20_000)
            # Plotly draws each chart as an SVG: six over time, one per column.
            for chart in ("chart-drift-share", "chart-latency", "chart-errors"):
                assert page.locator(f"#{chart} svg.main-svg").count() >= 1
            for j in range(len(COLUMNS)):
                assert page.locator(f"#dist-{j} svg.main-svg").count() >= 1
            assert page.locator("#summary").inner_text().count("Requests") == 1
        finally:
            browser.close()
    assert problems == []
    assert requests == [out.as_uri()]  # the file itself and nothing else


def test_without_plotly_the_distributions_are_svg(
    seeded: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.monitoring.report_html as module
    from keel.monitoring import monitoring_report

    monkeypatch.setattr(module, "plotly_js", lambda: None)
    with keel_home(seeded["home"].path):
        page = monitoring_report("churn-prod", end=END).to_html()
    assert "<script" not in page
    assert "pip install 'keel-mlops[ui-charts]'" in page
    assert page.count('aria-label="reference and current distributions"') == len(COLUMNS)
    assert 'id="summary"' in page
