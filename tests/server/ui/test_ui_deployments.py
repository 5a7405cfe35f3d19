"""The deployments pages through the app (TestClient), on deployments made through the
controller and the SQL store: list, detail (split, versions, rollout progress and gate,
A/B analysis, shadow agreement, history), live figures from the data plane, the empty
state, unknown names as a 404 page, hostile text escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from deployments_support import HOSTILE, HOSTILE_MODEL, DeployHome, seed_deployments

from keel.deploy.traffic import BackendStats

ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _client(home: Path) -> Any:
    import warnings

    with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from keel.config import load_settings
    from keel.server import create_app

    # No lifespan: no data plane loads or ticks; the pages read the store as deployed.
    return TestClient(create_app(settings=load_settings(home)))


def _home(tmp_path_factory: pytest.TempPathFactory, seed: Any) -> Iterator[Any]:
    from tests.conftest import _reset

    home = tmp_path_factory.mktemp("deploy-ui") / "keel-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(home))
        mp.delenv("KEEL_TRACKING_URI", raising=False)
        mp.delenv("KEEL_ARTIFACT_URI", raising=False)
        _reset()
        try:
            yield seed(home)
        finally:
            _reset()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployHome]:
    yield from _home(tmp_path_factory, seed_deployments)


@pytest.fixture(scope="module")
def client(deployed: DeployHome) -> Any:
    return _client(deployed.home)


def _get(client: Any, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[:800])
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    return response.text


def _rows(html: str, table_id: str) -> list[list[str]]:
    """Return the text of each cell of each body row of the table with ``table_id``."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert table, f"no table #{table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(1), re.S)
    return [
        [
            " ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
    ]


def test_the_list_shows_name_environment_strategy_split_and_status(client: Any) -> None:
    html = _get(client, "/deployments")
    rows = {r[0]: r for r in _rows(html, "deployments")}
    assert set(rows) == {"churn-ab", "churn-manual", "churn-prod", "churn-shadow", "hostile"}
    assert rows["churn-prod"][1:5] == [
        "prod",
        "canary",
        "churn/1 50% · churn/2 50%",
        "canary step 2/3",
    ]
    assert rows["churn-ab"][1:5] == ["staging", "ab", "churn/1 50% · churn/3 50%", "A/B testing"]
    assert rows["churn-shadow"][2] == "shadow (ended)"
    assert rows["churn-shadow"][4] == "serving"
    assert rows["churn-manual"][2:4] == ["—", "churn/1 66.5% · churn/3 33.5%"]
    # The split bar: one segment per live backend, as wide as its weight.
    assert 'style="width: 66.5%"' in html
    assert 'style="width: 33.5%"' in html
    assert 'href="/deployments/churn-prod"' in html
    assert '<a href="/deployments" class="active">Deployments</a>' in html


def test_the_list_filters_by_environment_and_has_an_empty_state(client: Any) -> None:
    staging = _rows(_get(client, "/deployments?environment=staging"), "deployments")
    assert [r[0] for r in staging] == ["churn-ab", "churn-shadow"]
    empty = _get(client, "/deployments?environment=nowhere")
    assert "No deployments in nowhere yet." in empty
    assert 'id="deployments"' not in empty
    bad = _get(client, "/deployments?environment=" + "%3Cx%3E", 400)
    assert "environment" in bad


def test_an_empty_home_says_there_are_no_deployments(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    for home in _home(tmp_path_factory, lambda home: home):
        html = _get(_client(home), "/deployments")
        assert "No deployments yet." in html


def test_a_canary_shows_its_split_step_next_step_gate_and_history(
    client: Any, deployed: DeployHome
) -> None:
    html = _get(client, "/deployments/churn-prod")
    assert "step 2 of 3" in html
    assert re.search(
        r'<li class="done">10%</li><li class="current">50%</li><li class="todo">100%</li>', html
    )
    due_ms = int((deployed.canary_step_started + 3600) * 1000)
    assert f'data-due-ms="{due_ms}"' in html
    assert "Each step is held 3600 s, then needs at least 50 canary requests" in html
    gate = _rows(html, "gate-results")
    assert gate == [
        ["canary", "100", "1", "1.00%", "14.0 ms"],
        ["stable", "900", "0", "0.00%", "12.5 ms"],
    ]
    assert "Last gate: step 1 passed" in html
    versions = _rows(html, "versions")
    assert [r[:3] for r in versions] == [
        ["churn/1", "stable", "50%"],
        ["churn/2", "candidate", "50%"],
    ]
    assert 'href="/models/churn/versions/2"' in html
    history = _rows(html, "history")
    assert [r[0] for r in history] == ["3", "2", "1"]  # newest first
    assert history[0][3] == "canary.step"
    assert history[0][4] == "churn/1 50% · churn/2 50%"
    assert "gate passed at step 1/3" in history[0][5]
    assert history[2][4] == "churn/1 100%"
    assert "Live figures show when this server routes the deployment." in html


def test_an_ab_test_shows_its_analysis_and_winner(client: Any) -> None:
    html = _get(client, "/deployments/churn-ab")
    section = html[html.index('id="ab-analysis"') :]
    assert "winner: churn/3" in section
    assert "two-proportion z-test" in section
    assert re.search(r"churn/3\s*<span class=\"badge\">winner</span>", section)
    details = "binary outcomes to maximize, alpha 0.05, at least 50 per variant"
    assert f"{details}; variants assigned by 'x-request-key'" in unescape(html)


def test_a_shadow_shows_its_agreement_kept_when_it_ended(client: Any) -> None:
    html = _get(client, "/deployments/churn-shadow")
    agreement = re.search(r'id="shadow-agreement">([^<]*)<', html)
    assert agreement is not None
    assert agreement.group(1) == "96.2%"
    assert "churn/3 received a mirror of every live request until the shadow ended" in html
    assert "mirrors until stopped" in html
    assert "+ shadow churn/3" in _rows(html, "history")[1][4]  # while it ran
    assert '<span class="status finished">ended</span>' in html


def test_live_figures_from_the_data_plane_are_shown_when_present(deployed: DeployHome) -> None:
    class Router:  # what app.state.deployment_router answers for one served deployment
        def stats(self, deployment: str, since: float) -> dict[str, BackendStats]:
            assert deployment == "churn-prod"
            return {
                "churn/1": BackendStats("churn/1", requests=40, errors=2, p99_ms=8.25),
                "churn/2": BackendStats("churn/2", requests=38, errors=0, p99_ms=None),
            }

    client = _client(deployed.home)
    client.app.state.deployment_router = Router()
    rows = _rows(_get(client, "/deployments/churn-prod"), "versions")
    assert rows == [
        ["churn/1", "stable", "50%", "40", "2", "5.00%", "8.2 ms"],
        ["churn/2", "candidate", "50%", "38", "0", "0.00%", "—"],
    ]


def test_live_figures_come_from_the_servers_own_data_plane(deployed: DeployHome) -> None:
    # With its lifespan the app loads and warms every deployment's versions and routes
    # requests; the page reads the router's figures for the last minute.
    with _client(deployed.home) as client:
        for i in range(12):
            body = {"instances": [[0.1 * i, 0.2, 0.3]]}
            response = client.post("/deployments/churn-prod/invocations", json=body)
            assert response.status_code == 200, response.text
        html = _get(client, "/deployments/churn-prod")
    assert 'Requests <span class="kind">last 60 s</span>' in html
    rows = _rows(html, "versions")
    assert [r[0] for r in rows] == ["churn/1", "churn/2"]
    assert sum(int(r[3]) for r in rows) == 12
    assert [r[4] for r in rows] == ["0", "0"]


def test_with_auth_the_pages_redirect_to_login(deployed: DeployHome) -> None:
    client = _client(deployed.home)
    client.app.state.ui_authenticate = lambda token: "alice" if token == "kt_good" else None
    client.follow_redirects = False
    for url in ("/deployments", "/deployments/churn-prod"):
        response = client.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/login?next=%2Fdeployments")
    client.cookies.set("keel_token", "kt_good")
    assert client.get("/deployments/churn-prod").status_code == 200


@pytest.mark.parametrize("name", ["nope", "no%20such", "%3Cscript%3E", "a" * 200])
def test_an_unknown_deployment_is_a_404_page(client: Any, name: str) -> None:
    html = _get(client, f"/deployments/{name}", 404)
    assert "Not found" in html
    assert "no deployment named" in html
    assert "<script>" not in html


def test_hostile_text_is_escaped(client: Any) -> None:
    html = _get(client, "/deployments/hostile")
    assert ESCAPED in html  # the description
    assert HOSTILE not in html
    assert HOSTILE_MODEL not in html
    assert "&lt;img src=x onerror=alert(2)&gt;/1" in html
    listing = _get(client, "/deployments")
    assert HOSTILE_MODEL not in listing
