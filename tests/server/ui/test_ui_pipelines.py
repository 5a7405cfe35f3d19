"""The pipeline pages through the app (TestClient): the list, a pipeline's runs, a run's
DAG coloured by status with the chosen step's logs and output; hostile text escaped,
unknown ids and non-pipeline runs a 404 page, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pipelines_support import HOSTILE, PipelineHome, seed_pipelines

from keel.pipelines.entities import StepRunInfo
from keel.server.ui.pipeline_dag import NODE_W, layout_dag

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture(scope="module")
def piped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, PipelineHome]]:
    import warnings

    from tests.conftest import _reset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from keel.config import load_settings
    from keel.server import create_app

    home = tmp_path_factory.mktemp("pipeline-ui") / "keel-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(home))
        mp.delenv("KEEL_TRACKING_URI", raising=False)
        mp.delenv("KEEL_ARTIFACT_URI", raising=False)
        _reset()
        try:
            seeded = seed_pipelines(home)
        finally:
            _reset()
    with TestClient(create_app(settings=load_settings(home))) as client:
        yield client, seeded
    _reset()


def _get(client: Any, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[:400])
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _node_statuses(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-node="([^"]+)" data-status="([^"]+)"', html))


def test_the_pipelines_page_lists_each_pipeline_with_its_latest_run(piped) -> None:
    client, seeded = piped
    html = _get(client, "/pipelines")
    assert 'href="/pipelines/diamond"' in html
    assert 'href="/pipelines/fragile"' in html
    assert f'href="/pipeline-runs/{seeded.failed_run}"' in html
    assert '<a href="/pipelines" class="active">Pipelines</a>' in html


def test_a_pipelines_runs_are_listed_newest_first(piped) -> None:
    client, seeded = piped
    html = _get(client, "/pipelines/diamond")
    runs = re.findall(r'href="/pipeline-runs/([0-9a-f]{32})"', html)
    assert runs == [seeded.cached_run, seeded.finished_run]
    assert "<code>n=4</code>" in html


def test_a_run_is_drawn_as_its_dag_coloured_by_status(piped) -> None:
    client, seeded = piped
    first = _get(client, f"/pipeline-runs/{seeded.finished_run}")
    assert _node_statuses(first) == {
        "load": "finished",
        "double": "finished",
        "square": "finished",
        "report": "finished",
    }
    # one edge per data dependency: load feeds two steps, report takes two
    edges = re.findall(r'data-source="([^"]+)" data-target="([^"]+)"', first)
    assert sorted(edges) == [
        ("double", "report"),
        ("load", "double"),
        ("load", "square"),
        ("square", "report"),
    ]
    cached = _get(client, f"/pipeline-runs/{seeded.cached_run}")
    assert set(_node_statuses(cached).values()) == {"cached"}
    assert 'class="node cached' in cached


def test_a_failed_run_opens_on_its_failed_step_with_the_error(piped) -> None:
    client, seeded = piped
    html = _get(client, f"/pipeline-runs/{seeded.failed_run}")
    assert _node_statuses(html) == {
        "load": "finished",
        "explode": "failed",
        "double": "skipped",
        "load-2": "finished",
        "square": "finished",
    }
    assert "Step explode" in html
    assert 'id="step-error"' in html
    assert "exploded on 3 rows" in html


def test_a_chosen_steps_logs_and_output_are_shown_escaped(piped) -> None:
    client, seeded = piped
    logs = _get(client, f"/pipeline-runs/{seeded.finished_run}?step=load")
    match = re.search(r'<pre class="logs" id="step-logs">(.*?)</pre>', logs, re.S)
    assert match, "no logs shown"
    assert f"loading 4 rows {ESCAPED}" in match.group(1)
    assert HOSTILE not in logs
    report = _get(client, f"/pipeline-runs/{seeded.finished_run}?step=report")
    value = re.search(r'<pre id="step-output-value">(.*?)</pre>', report, re.S)
    assert value, "no output value shown"
    assert "&#34;sum_double&#34;: 12" in value.group(1) or '"sum_double": 12' in value.group(1)
    assert HOSTILE not in report


@pytest.mark.parametrize(
    "url",
    [
        "/pipeline-runs/" + "0" * 32,
        "/pipeline-runs/not-an-id",
        "/pipeline-runs/" + "x" * 5000,
        "/pipelines/no-such-pipeline",
        "/pipelines/" + "p" * 300,
    ],
)
def test_unknown_runs_and_pipelines_are_a_404_page(piped, url: str) -> None:
    client, _ = piped
    _get(client, url, status=404)


def test_an_unknown_step_and_a_hostile_step_name_are_a_404_page(piped) -> None:
    client, seeded = piped
    html = _get(client, f"/pipeline-runs/{seeded.finished_run}?step={HOSTILE}", status=404)
    assert HOSTILE not in html
    _get(client, f"/pipeline-runs/{seeded.finished_run}?step=" + "s" * 300, status=400)


def test_a_run_that_is_not_a_pipeline_run_is_a_404_page(piped) -> None:
    client, seeded = piped
    step_run = re.search(
        r'<a href="/runs/([0-9a-f]{32})">its run</a>',
        _get(client, f"/pipeline-runs/{seeded.finished_run}?step=load"),
    )
    assert step_run
    _get(client, f"/pipeline-runs/{step_run.group(1)}", status=404)


def _steps(edges: dict[str, tuple[str, ...]]) -> list[StepRunInfo]:
    return [
        StepRunInfo(node, node, "0" * 32, "finished", 0, 1, None, ups, {})
        for node, ups in edges.items()
    ]


def test_the_layout_puts_every_node_after_its_upstream_nodes() -> None:
    steps = _steps({"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "e": ()})
    layout = layout_dag(steps)
    layer = {n.node: n.layer for n in layout.nodes}
    assert layer == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0}
    boxes = {(n.x, n.y) for n in layout.nodes}
    assert len(boxes) == len(steps)  # no two boxes overlap
    assert layout.width >= 3 * NODE_W


def test_a_long_chain_lays_out_without_recursion() -> None:
    chain = {"s0": ()} | {f"s{i}": (f"s{i - 1}",) for i in range(1, 3000)}
    layout = layout_dag(_steps(chain))
    assert max(n.layer for n in layout.nodes) == 2999
    assert len(layout.edges) == 2999


def test_a_recorded_cycle_or_unknown_upstream_is_drawn_not_raised() -> None:
    layout = layout_dag(_steps({"a": ("b",), "b": ("a",), "c": ("ghost",)}))
    assert {n.node for n in layout.nodes} == {"a", "b", "c"}
    assert layout.edges == [] or all(e.source in {"a", "b"} for e in layout.edges)
