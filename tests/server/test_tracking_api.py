"""The tracking REST API: every endpoint's happy path, and bad input that must be a 4xx."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.server.schemas.tracking import MAX_BATCH_METRICS, MAX_JSON_BODY

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1"
HEX = "0" * 32


@pytest.fixture
def client(keel_env: Any, tmp_path: Path) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(tmp_path / "server-home"))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body["message"]


def _experiment(client: TestClient, name: str = "e") -> str:
    response = client.post(f"{API}/experiments", json={"name": name, "tags": {"team": "a"}})
    assert response.status_code == 200, response.text
    return response.json()["experiment_id"]


def _run(client: TestClient, experiment_id: str, **extra: Any) -> dict[str, Any]:
    body = {"experiment_id": experiment_id, "name": "r", "user": "u", "start_time": 1000}
    response = client.post(f"{API}/runs", json={**body, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_experiments_round_trip(client: TestClient) -> None:
    eid = _experiment(client, "churn")
    got = client.get(f"{API}/experiments/{eid}").json()
    assert got["name"] == "churn"
    assert got["tags"] == {"team": "a"}
    assert client.get(f"{API}/experiments/by-name", params={"name": "churn"}).json() == got
    assert [e["name"] for e in client.get(f"{API}/experiments").json()["experiments"]] == ["churn"]
    _error(client.post(f"{API}/experiments", json={"name": "churn"}), 409, "ALREADY_EXISTS")
    assert client.delete(f"{API}/experiments/{eid}").status_code == 204
    assert client.get(f"{API}/experiments").json()["experiments"] == []
    listed = client.get(f"{API}/experiments", params={"include_deleted": "true"}).json()
    assert [e["lifecycle_stage"] for e in listed["experiments"]] == ["deleted"]


def test_unknown_and_hostile_ids(client: TestClient) -> None:
    _error(client.get(f"{API}/experiments/{HEX}"), 404, "NOT_FOUND")
    _error(client.get(f"{API}/experiments/by-name", params={"name": "nope"}), 404, "NOT_FOUND")
    _error(client.get(f"{API}/runs/{HEX}"), 404, "NOT_FOUND")
    _error(client.delete(f"{API}/runs/{HEX}"), 404, "NOT_FOUND")
    assert "32 lowercase hex" in _error(client.get(f"{API}/runs/not-an-id"), 400, "INVALID_INPUT")
    traversal = client.get(f"{API}/runs/..%2F..%2Fetc")  # routed as a path: no such route
    assert traversal.status_code in (400, 404)
    assert set(traversal.json()) == {"error_code", "message"}
    _error(client.get(f"{API}/runs/..%5C..%5Cetc"), 400, "INVALID_INPUT")
    _error(client.get(f"{API}/experiments/%27%3B%20DROP"), 400, "INVALID_INPUT")
    _error(client.post(f"{API}/runs/{HEX}/batch", json={"tags": {"a": "b"}}), 404, "NOT_FOUND")
    _error(client.get(f"{API}/runs/{HEX}/metric-history", params={"key": "m"}), 404, "NOT_FOUND")


def test_run_lifecycle(client: TestClient) -> None:
    eid = _experiment(client)
    run = _run(client, eid, tags={"t": "v"}, writer="w1", git_dirty=True)
    rid = run["run_id"]
    assert run["status"] == "running"
    assert run["tags"] == {"t": "v"}
    child = _run(client, eid, parent_run_id=rid)
    assert child["parent_run_id"] == rid
    _error(
        client.post(
            f"{API}/runs/{rid}/claim", json={"writer": "w2", "now": 1001, "timeout_ms": 60_000}
        ),
        409,
        "CONFLICT",
    )
    hb = client.post(f"{API}/runs/{rid}/heartbeat", json={"writer": "w1", "now": 1}).status_code
    assert hb == 204
    stale = client.post(f"{API}/runs/fail-stale", json={"now": 100_000, "timeout_ms": 10})
    assert set(stale.json()["run_ids"]) == {rid, child["run_id"]}
    claimed = client.post(
        f"{API}/runs/{rid}/claim", json={"writer": "w2", "now": 200_000, "timeout_ms": 60_000}
    )
    assert claimed.json()["status"] == "running"
    ended = client.post(f"{API}/runs/{rid}/end", json={"status": "FINISHED", "end_time": 300_000})
    assert ended.json()["status"] == "finished"
    assert ended.json()["end_time"] == 300_000
    bad = client.post(f"{API}/runs/{rid}/end", json={"status": "done", "end_time": 1})
    assert "unknown run status" in _error(bad, 400, "INVALID_INPUT")
    assert client.delete(f"{API}/runs/{rid}").status_code == 204
    assert client.get(f"{API}/runs/{rid}").json()["lifecycle_stage"] == "deleted"


def test_batches_carry_nan_and_infinities_both_ways(client: TestClient) -> None:
    rid = _run(client, _experiment(client))["run_id"]
    metrics = [
        ["loss", 1.5, 10, 0],
        ["loss", "NaN", 11, 1],
        ["loss", "Infinity", 12, 2],
        ["loss", "-Infinity", 13, 3],
        ["acc", 3, 14, 0],
    ]
    body = {"metrics": metrics, "params": {"lr": "0.1"}, "tags": {"x": "y"}}
    assert client.post(f"{API}/runs/{rid}/batch", json=body).status_code == 204
    history = client.get(f"{API}/runs/{rid}/metric-history", params={"key": "loss"}).json()
    assert [m["value"] for m in history["metrics"]] == [1.5, "NaN", "Infinity", "-Infinity"]
    run = client.get(f"{API}/runs/{rid}").json()
    assert run["metrics"] == {"loss": "-Infinity", "acc": 3.0}
    assert run["params"] == {"lr": "0.1"}
    conflict = client.post(f"{API}/runs/{rid}/batch", json={"params": {"lr": "0.2"}})
    assert "immutable" in _error(conflict, 409, "CONFLICT")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"metrics": [["m", "nan", 1, 0]]}, "metrics[0]"),
        ({"metrics": [["m", "high", 1, 0]]}, "must be a number"),
        ({"metrics": [["m", True, 1, 0]]}, "must be a number"),
        ({"metrics": [["m", None, 1, 0]]}, "must be a number"),
        ({"metrics": [["m", 1.0, 1]]}, "[key, value, timestamp, step]"),
        ({"metrics": [["ok", 1.0, 1, 0], ["../x", 1.0, 1, 0]]}, "metrics[1]"),
        ({"metrics": [["m", 1.0, -5, 0]]}, "outside the valid range"),
        ({"metrics": [["m", 1.0, 1, "3"]]}, "step must be an integer"),
        ({"metrics": [["m", 1.0, 1, 2**70]]}, "64-bit"),
        ({"metrics": [["m", 10**400, 1, 0]]}, "too large"),
        ({"metrics": "nope"}, "metrics"),
        ({"params": {"p": 3}}, "params.p"),
        ({"params": {"p": "v" * 6001}}, "limit is 6000"),
        ({"tags": {"": "v"}}, "non-empty"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_batches_are_400_and_write_nothing(
    client: TestClient, body: dict[str, Any], fragment: str
) -> None:
    rid = _run(client, _experiment(client))["run_id"]
    message = _error(client.post(f"{API}/runs/{rid}/batch", json=body), 400, "INVALID_INPUT")
    assert fragment in message
    run = client.get(f"{API}/runs/{rid}").json()
    assert run["metrics"] == {}
    assert run["params"] == {}


def test_too_many_points_and_oversized_bodies(client: TestClient) -> None:
    rid = _run(client, _experiment(client))["run_id"]
    rows = [["m", 1.0, 1, i] for i in range(MAX_BATCH_METRICS + 1)]
    message = _error(
        client.post(f"{API}/runs/{rid}/batch", json={"metrics": rows}), 400, "INVALID_INPUT"
    )
    assert "metrics" in message
    huge = b'{"tags": {"t": "' + b"x" * (MAX_JSON_BODY + 1) + b'"}}'
    response = client.post(
        f"{API}/runs/{rid}/batch", content=huge, headers={"Content-Type": "application/json"}
    )
    _error(response, 413, "PAYLOAD_TOO_LARGE")

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
        yield b'{"tags": {"t": "'
        for _ in range(MAX_JSON_BODY // (1 << 20) + 1):
            yield b"x" * (1 << 20)
        yield b'"}}'

    response = client.post(
        f"{API}/experiments", content=chunked(), headers={"Content-Type": "application/json"}
    )
    _error(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/experiments", b"{not json"),
        ("/experiments", b"[]"),
        ("/experiments", b'{"name": 7}'),
        ("/experiments", b"{}"),
        ("/experiments", b'{"name": "x", "tags": {"a": 1}}'),
        ("/runs", b'{"experiment_id": "x"}'),
        ("/runs", b'{"experiment_id": "../../etc", "name": "r", "user": "u", "start_time": 1}'),
        (
            "/runs",
            b'{"experiment_id": "' + HEX.encode() + b'", "name": "r", "user": "u", '
            b'"start_time": "1"}',
        ),
        ("/runs/fail-stale", b'{"now": -1, "timeout_ms": 1}'),
        ("/runs/search", b'{"experiment_ids": "abc"}'),
        ("/runs/search", b'{"experiment_ids": [], "max_results": 1e9}'),
        ("/runs/search", b'{"experiment_ids": [], "max_results": true}'),
    ],
)
def test_malformed_bodies_are_400(client: TestClient, path: str, content: bytes) -> None:
    response = client.post(
        API + path, content=content, headers={"Content-Type": "application/json"}
    )
    _error(response, 400, "INVALID_INPUT")


def test_search_pages_and_refuses_bad_filters(client: TestClient) -> None:
    eid = _experiment(client)
    for i in range(3):
        rid = _run(client, eid)["run_id"]
        client.post(f"{API}/runs/{rid}/batch", json={"metrics": [["acc", i / 10, 1, 0]]})
    body: dict[str, Any] = {
        "experiment_ids": [eid],
        "filter": "metrics.acc >= 0.1",
        "order_by": "metrics.acc DESC",
        "max_results": 1,
    }
    page = client.post(f"{API}/runs/search", json=body).json()
    assert [r["metrics"]["acc"] for r in page["runs"]] == [0.2]
    body["page_token"] = page["next_page_token"]
    page = client.post(f"{API}/runs/search", json=body).json()
    assert [r["metrics"]["acc"] for r in page["runs"]] == [0.1]
    assert page["next_page_token"] is None
    bad = {"experiment_ids": [eid], "filter": "metrics.acc >>> 1"}
    message = _error(client.post(f"{API}/runs/search", json=bad), 400, "INVALID_INPUT")
    assert "position" in message
    huge = {"experiment_ids": [eid], "max_results": 10**12}
    _error(client.post(f"{API}/runs/search", json=huge), 400, "INVALID_INPUT")
    token = {"experiment_ids": [eid], "page_token": "garbage"}
    _error(client.post(f"{API}/runs/search", json=token), 400, "INVALID_INPUT")


def test_inputs_and_artifacts(client: TestClient) -> None:
    rid = _run(client, _experiment(client))["run_id"]
    item = {
        "name": "train",
        "digest": "abc",
        "source": None,
        "context": "training",
        "schema": {"cols": ["a"]},
        "profile": None,
    }
    assert client.post(f"{API}/runs/{rid}/inputs", json={"inputs": [item]}).status_code == 204
    assert client.get(f"{API}/runs/{rid}/inputs").json() == {"inputs": [item]}
    entry = {"path": "model/model.pkl", "digest": "a" * 64, "size": 3}
    ok = client.post(f"{API}/runs/{rid}/artifacts", json={"entries": [entry]})
    assert ok.status_code == 204
    listed = client.get(f"{API}/runs/{rid}/artifacts", params={"prefix": "model"}).json()
    assert listed == {"artifacts": [entry]}
    assert client.get(f"{API}/runs/{rid}/artifacts", params={"prefix": "other"}).json() == {
        "artifacts": []
    }
    for bad in (
        {**entry, "path": "../../etc/passwd"},
        {**entry, "digest": "zz"},
        {**entry, "size": -1},
        {**entry, "path": "/abs"},
    ):
        response = client.post(f"{API}/runs/{rid}/artifacts", json={"entries": [bad]})
        _error(response, 400, "INVALID_INPUT")
    hostile = client.get(f"{API}/runs/{rid}/artifacts", params={"prefix": "../.."})
    _error(hostile, 400, "INVALID_INPUT")
    for bad_item in ({**item, "name": ""}, {**item, "profile": {"rows": 2**64}}):
        _error(
            client.post(f"{API}/runs/{rid}/inputs", json={"inputs": [bad_item]}),
            400,
            "INVALID_INPUT",
        )
    assert client.get(f"{API}/runs/{rid}/inputs").json() == {"inputs": [item]}  # unchanged


def test_wrong_methods_and_paths_are_json(client: TestClient) -> None:
    _error(client.put(f"{API}/runs/{HEX}"), 405, "METHOD_NOT_ALLOWED")
    _error(client.get(f"{API}/nothing-here"), 404, "NOT_FOUND")


def test_search_resolves_experiment_names_in_the_request(client: TestClient) -> None:
    eid = _experiment(client, "named")
    rid = _run(client, eid)["run_id"]
    for form in ({"experiment_names": ["named"]}, {"experiment_names": [eid]}):
        page = client.post(f"{API}/runs/search", json=form).json()
        assert [r["run_id"] for r in page["runs"]] == [rid]
    both = {"experiment_ids": [eid], "experiment_names": ["named"]}
    assert len(client.post(f"{API}/runs/search", json=both).json()["runs"]) == 1
    missing = {"experiment_names": ["named", "nope"]}
    message = _error(client.post(f"{API}/runs/search", json=missing), 404, "NOT_FOUND")
    assert message == "no experiment named 'nope'"
    bad = {"experiment_names": [""]}
    _error(client.post(f"{API}/runs/search", json=bad), 400, "INVALID_INPUT")
