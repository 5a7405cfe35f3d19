"""The hpo REST API: a study's journal appended and read; refusals are 4xx, never 500;
editors write and viewers only read; an Optuna study runs through a live server."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from tests.conftest import KeelEnv

API = "/api/v1/hpo/studies"


@pytest.fixture
def client(keel_env: KeelEnv) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(keel_env.home))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body["message"]


def test_append_read_get_and_list(client: TestClient) -> None:
    assert client.get(f"{API}/s/logs").json() == {"logs": [], "next": 0}
    r = client.post(f"{API}/s/logs", json={"logs": [{"op_code": 0, "n": "s"}, {"op_code": 4}]})
    assert r.status_code == 200
    assert r.json() == {"first": 0, "count": 2}
    assert client.post(f"{API}/s/logs", json={"logs": [{"op_code": 5}]}).json()["first"] == 2
    assert client.get(f"{API}/s/logs", params={"from": 1}).json() == {
        "logs": [{"op_code": 4}, {"op_code": 5}],
        "next": 3,
    }
    assert client.get(f"{API}/s/logs", params={"from": 1, "limit": 1}).json()["next"] == 2
    study = client.get(f"{API}/s").json()
    assert study["name"] == "s"
    assert study["log_count"] == 3
    assert [s["name"] for s in client.get(API).json()["studies"]] == ["s"]
    assert "not-there" in _error(client.get(f"{API}/not-there"), 404, "NOT_FOUND")
    both = client.post(f"{API}/s/logs", json={"logs": [{"op_code": 6}], "read_from": 2}).json()
    assert both == {"first": 3, "count": 1, "logs": [{"op_code": 5}, {"op_code": 6}]}


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "send"),
        (b'{"logs": "x"}', "send"),
        (b'{"logs": []}', "1 to 1000"),
        (b'{"logs": [1]}', "entry 0 is not an object"),
        (b'{"logs": [{"op_code": 0}], "read_from": -1}', "journal position"),
        (b'{"logs": [{"op_code": 0}], "read_from": "3"}', "journal position"),
        (b'{"logs": [' + b'{"op_code": 0},' * 1000 + b'{"op_code": 0}]}', "1 to 1000"),
    ],
)
def test_bad_appends_are_400(client: TestClient, body: bytes, match: str) -> None:
    r = client.post(f"{API}/s/logs", content=body, headers={"Content-Type": "application/json"})
    assert match in _error(r, 400, "INVALID_INPUT")
    assert client.get(API).json() == {"studies": []}


def test_a_huge_body_is_refused_before_it_is_read(client: TestClient) -> None:
    from keel.server.routes.hpo import MAX_BODY

    big = b'{"logs": [{"op_code": 0, "x": "' + b"a" * MAX_BODY + b'"}]}'
    message = _error(client.post(f"{API}/s/logs", content=big), 400, "INVALID_INPUT")
    assert f"exceeds {MAX_BODY} bytes" in message


@pytest.mark.parametrize("path", ["%2E%2E", "a%2Fb", "-x", "x" * 129, "s%20p"])
def test_hostile_study_names_are_refused(client: TestClient, path: str) -> None:
    for r in (
        client.get(f"{API}/{path}/logs"),
        client.post(f"{API}/{path}/logs", json={"logs": [{"op_code": 0}]}),
    ):
        assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("query", [{"from": -1}, {"from": "x"}, {"limit": 0}, {"limit": 10**6}])
def test_bad_read_positions_are_4xx(client: TestClient, query: dict[str, Any]) -> None:
    assert 400 <= client.get(f"{API}/s/logs", params=query).status_code < 500


def test_a_corrupt_entry_is_an_integrity_error_through_the_server(
    client: TestClient, keel_env: KeelEnv
) -> None:
    from sqlalchemy import update

    from keel.store.schema_hpo import hpo_journal

    client.post(f"{API}/s/logs", json={"logs": [{"op_code": 0}, {"op_code": 4}]})
    stores = client.app.state.stores  # type: ignore[attr-defined]
    with stores.tracking.db.write() as conn:
        conn.execute(update(hpo_journal).where(hpo_journal.c.number == 1).values(log="{oops"))
    message = _error(client.get(f"{API}/s/logs"), 500, "INTEGRITY_ERROR")
    assert "study 's': journal entry 1 is corrupt" in message


def test_editors_append_and_viewers_only_read(keel_env: KeelEnv, tmp_path: Path) -> None:
    from keel.config import load_settings
    from keel.governance.auth import Role, auth_store
    from keel.server import create_app
    from keel.stores import open_stores

    settings = load_settings(tmp_path / "home")
    stores = open_stores(settings)
    auth = auth_store(stores)
    auth.create_user("eve", role=Role.EDITOR)
    auth.create_user("vic")
    tokens = {u: auth.create_token(u).token for u in ("eve", "vic")}
    app = create_app(settings=settings, stores=stores, auth=True)
    body = {"logs": [{"op_code": 0}]}
    with TestClient(app, raise_server_exceptions=False) as c:
        as_eve = {"Authorization": f"Bearer {tokens['eve']}"}
        as_vic = {"Authorization": f"Bearer {tokens['vic']}"}
        assert c.post(f"{API}/s/logs", json=body).status_code == 401
        assert c.post(f"{API}/s/logs", json=body, headers=as_vic).status_code == 403
        assert c.post(f"{API}/s/logs", json=body, headers=as_eve).status_code == 200
        assert c.get(f"{API}/s/logs", headers=as_vic).json()["logs"] == [{"op_code": 0}]
        assert c.get(API, headers=as_vic).status_code == 200


@pytest.mark.parametrize("backend", ["rest"], indirect=True)
def test_an_optuna_study_runs_through_a_live_server(backend: KeelEnv) -> None:
    import optuna

    import keel
    from keel.hpo import create_study, load_study, tune

    study = create_study("remote", direction="maximize")
    study.optimize(lambda t: -((t.suggest_float("x", -2, 2) - 0.5) ** 2), n_trials=6)
    result = tune(_objective, n_trials=4, study="remote")
    loaded = load_study("remote")
    assert [t.number for t in loaded.trials] == list(range(10))
    assert loaded.best_value == max(t.value for t in loaded.trials)
    assert result.best_value == loaded.best_value
    run = keel.get_run(result.trial_run_ids[6])
    assert run.tags["keel.hpo.state"] == "COMPLETE"
    assert isinstance(loaded, optuna.Study)


def _objective(trial: Any) -> float:
    return -((trial.suggest_float("x", -2, 2) - 0.5) ** 2)
