"""The pipeline pages in a real browser (headless Debian Chromium, Playwright) against a
live server on 127.0.0.1: the list, a pipeline's runs, a run's DAG coloured by status,
clicking a step to see its logs and output, and a failed run opening on its error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pipelines_support import HOSTILE, PipelineHome, seed_pipelines

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("ui-browser")]

COLOURS = {  # the fill of a step's box by status (pipelines.css)
    "finished": "rgb(230, 244, 234)",
    "cached": "rgb(232, 240, 254)",
    "failed": "rgb(253, 236, 234)",
    "skipped": "rgb(241, 241, 241)",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, PipelineHome]]:
    from tests.conftest import _reset
    from tests.live_server import running_server

    home = tmp_path_factory.mktemp("pipeline-ui-browser") / "keel-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(home))
        mp.delenv("KEEL_TRACKING_URI", raising=False)
        mp.delenv("KEEL_ARTIFACT_URI", raising=False)
        _reset()
        try:
            seeded = seed_pipelines(home)
        finally:
            _reset()
    with running_server(home) as url:
        yield url, seeded
    _reset()


def _fill(page: Any, node: str) -> str:
    return page.locator(f'svg#dag a.node[data-node="{node}"] rect').evaluate(
        "el => getComputedStyle(el).fill"
    )


def test_a_person_finds_a_run_sees_its_dag_and_opens_a_steps_logs(served, page) -> None:
    from playwright.sync_api import expect

    url, seeded = served
    page.goto(url + "/")
    page.get_by_role("link", name="Pipelines", exact=True).click()
    expect(page.locator("h1")).to_have_text("Pipelines")
    expect(page.locator("#pipelines tbody tr")).to_have_count(2)

    page.get_by_role("link", name="diamond", exact=True).click()
    expect(page.locator("#pipeline-runs tbody tr")).to_have_count(2)
    page.locator(f'a[href="/pipeline-runs/{seeded.finished_run}"]').click()

    dag = page.get_by_role("img", name="the pipeline's steps and the data passed between them")
    expect(dag).to_be_visible()
    expect(dag.locator("a.node")).to_have_count(4)
    expect(dag.locator("path.edge")).to_have_count(4)
    for node in ("load", "double", "square", "report"):
        assert _fill(page, node) == COLOURS["finished"]
    # every edge runs left to right: each step is drawn after the steps it takes data from
    load_box = dag.locator('a.node[data-node="load"] rect').bounding_box()
    report_box = dag.locator('a.node[data-node="report"] rect').bounding_box()
    assert load_box["x"] + load_box["width"] < report_box["x"]

    dag.locator('a.node[data-node="load"]').click()
    expect(page.locator("#step h2")).to_contain_text("Step load")
    expect(page.locator("#step-logs")).to_contain_text(f"loading 4 rows {HOSTILE}")  # as text
    expect(page.locator("#step-output")).to_contain_text("json")

    dag.locator('a.node[data-node="report"]').click()
    expect(page.locator("#step-output-value")).to_contain_text('"sum_square": 14')


def test_cached_and_failed_runs_are_coloured_and_a_failure_opens_on_its_error(served, page) -> None:
    from playwright.sync_api import expect

    url, seeded = served
    page.goto(f"{url}/pipeline-runs/{seeded.cached_run}")
    for node in ("load", "double", "square", "report"):
        assert _fill(page, node) == COLOURS["cached"]
    expect(page.locator("#step-counts")).to_have_text("4 cached")

    page.goto(f"{url}/pipeline-runs/{seeded.failed_run}")
    expect(page.locator("#run-status")).to_have_text("failed")
    assert _fill(page, "explode") == COLOURS["failed"]
    assert _fill(page, "double") == COLOURS["skipped"]
    assert _fill(page, "square") == COLOURS["finished"]
    expect(page.locator("#step h2")).to_contain_text("Step explode")
    expect(page.locator("#step-error")).to_contain_text("exploded on 3 rows")

    response = page.goto(url + "/pipeline-runs/" + "0" * 32)
    assert response is not None
    assert response.status == 404
