"""POST /api/v1/runs/write: many runs in one request; bad bodies are 400 and write nothing;
with auth on, the caller needs the editor role on every experiment written to."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.governance.auth import Role, auth_store
from keel.tracking.run_writes import MAX_RUN_WRITES, new_run_id

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"


@pytest.fixture
def client(keel_env: Any, tmp_path: Path) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(tmp_path / "server-home"))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _experiment(client: TestClient, name: str = "e", headers: Any = None) -> str:
    response = client.post(f"{API}/experiments", json={"name": name}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["experiment_id"]


def _create(run_id: str, experiment_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "experiment_id": experiment_id,
        "name": "r",
        "user": "u",
        "start_time": 1000,
        **extra,
    }


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    return response.json()["message"]


def test_runs_are_created_updated_and_ended_in_one_request(client: TestClient) -> None:
    exp = _experiment(client)
    parent, child = new_run_id(), new_run_id()
    body = {
        "runs": [
            _create(parent, exp, tags={"kind": "pipeline"}, params={"n": "3"}, writer="w"),
            _create(
                child,
                exp,
                parent_run_id=parent,
                inputs=[{"name": "d.csv", "digest": "d" * 64, "context": "step-input"}],
                artifacts=[{"path": "logs.txt", "digest": "a" * 64, "size": 3}],
                status="finished",
                end_time=1005,
            ),
        ]
    }
    response = client.post(f"{API}/runs/write", json=body)
    assert response.status_code == 204, response.text
    got = client.get(f"{API}/runs/{child}").json()
    assert (got["status"], got["end_time"], got["parent_run_id"]) == ("finished", 1005, parent)
    assert client.get(f"{API}/runs/{child}/artifacts").json()["artifacts"][0]["path"] == "logs.txt"
    assert client.get(f"{API}/runs/{child}/inputs").json()["inputs"][0]["name"] == "d.csv"
    end = {"runs": [{"run_id": parent, "tags": {"kind": "p"}, "status": "failed", "end_time": 9}]}
    assert client.post(f"{API}/runs/write", json=end).status_code == 204
    got = client.get(f"{API}/runs/{parent}").json()
    assert (got["status"], got["tags"], got["params"]) == ("failed", {"kind": "p"}, {"n": "3"})


@pytest.mark.parametrize(
    ("run", "fragment"),
    [
        ({"run_id": "../etc"}, "run id"),
        ({"experiment_id": "x" * 32}, "experiment id"),
        ({"parent_run_id": "nope"}, "run id"),
        ({"status": "finished"}, "or neither"),
        ({"status": "running", "end_time": 5}, "final status"),
        ({"status": "bogus", "end_time": 5}, "unknown run status"),
        ({"user": None}, "needs a name, a user"),
        ({"name": "  "}, "must not be empty"),
        ({"tags": {"": "v"}}, "non-empty"),
        ({"params": {"k": "x" * 7000}}, "k"),
        ({"artifacts": [{"path": "../up", "digest": "a" * 64, "size": 1}]}, "artifact"),
        ({"artifacts": [{"path": "f", "digest": "short", "size": 1}]}, "digest"),
        ({"start_time": -1}, "start_time"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_runs_are_400_and_nothing_of_the_request_is_written(
    client: TestClient, run: dict[str, Any], fragment: str
) -> None:
    exp = _experiment(client)
    good = new_run_id()
    bad = {**_create(new_run_id(), exp), **run}
    response = client.post(f"{API}/runs/write", json={"runs": [_create(good, exp), bad]})
    assert fragment in _error(response, 400, "INVALID_INPUT")
    _error(client.get(f"{API}/runs/{good}"), 404, "NOT_FOUND")


def test_store_refusals_keep_their_status(client: TestClient) -> None:
    exp = _experiment(client)
    missing = {"runs": [{"run_id": new_run_id(), "tags": {"t": "1"}}]}
    _error(client.post(f"{API}/runs/write", json=missing), 404, "NOT_FOUND")
    run_id = new_run_id()
    assert (
        client.post(f"{API}/runs/write", json={"runs": [_create(run_id, exp)]}).status_code == 204
    )
    twice = {"runs": [{"run_id": run_id}, {"run_id": run_id}]}
    assert "twice" in _error(client.post(f"{API}/runs/write", json=twice), 400, "INVALID_INPUT")
    too_many = {"runs": [{"run_id": new_run_id()} for _ in range(MAX_RUN_WRITES + 1)]}
    _error(client.post(f"{API}/runs/write", json=too_many), 400, "INVALID_INPUT")
    params = {"runs": [{"run_id": run_id, "params": {"p": "1"}}]}
    assert client.post(f"{API}/runs/write", json=params).status_code == 204
    params["runs"][0]["params"] = {"p": "2"}
    _error(client.post(f"{API}/runs/write", json=params), 409, "CONFLICT")


def test_with_auth_on_the_caller_needs_editor_on_each_experiment(
    keel_env: Any, tmp_path: Path
) -> None:
    from keel.config import load_settings
    from keel.server import create_app
    from keel.stores import open_stores

    settings = load_settings(tmp_path / "home")
    stores = open_stores(settings)
    exp_a = stores.tracking.create_experiment("a").experiment_id
    exp_b = stores.tracking.create_experiment("b").experiment_id
    run_b = stores.tracking.create_run(exp_b, name="r", user="u", start_time=1).run_id
    auth = auth_store(stores)
    auth.create_user("exa")
    auth.grant("exa", Role.EDITOR, experiment_id=exp_a)
    auth.create_user("vic")
    tokens = {name: auth.create_token(name).token for name in ("exa", "vic")}
    app = create_app(settings=settings, stores=stores, auth=True)

    def post(user: str, runs: list[dict[str, Any]]) -> Any:
        headers = {"Authorization": f"Bearer {tokens[user]}"}
        return client.post(f"{API}/runs/write", json={"runs": runs}, headers=headers)

    with TestClient(app, raise_server_exceptions=False) as client:
        mine = new_run_id()
        ok = post("exa", [_create(mine, exp_a, user="claimed")])
        assert ok.status_code == 204, ok.text
        assert stores.tracking.get_run(mine).user == "exa"  # the caller, not the body's claim
        elsewhere = [_create(new_run_id(), exp_a), _create(new_run_id(), exp_b)]
        assert "experiment" in _error(post("exa", elsewhere), 403, "PERMISSION_DENIED")
        update = [{"run_id": run_b, "tags": {"t": "1"}}]
        _error(post("exa", update), 403, "PERMISSION_DENIED")
        _error(post("vic", [_create(new_run_id(), exp_a)]), 403, "PERMISSION_DENIED")
        assert stores.tracking.get_run(run_b).tags == {}
        assert [r.run_id for r in stores.tracking.search_runs([exp_a])] == [mine]
