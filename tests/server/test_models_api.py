"""The registry REST API: every endpoint's happy path and its refusals (4xx, never 500)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from keel.errors import AlreadyExists, InvalidInput, NotFound

API = "/api/v1"
DIGEST = "ab" * 32


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(tmp_path / "home"))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _version_body(**extra: object) -> dict[str, object]:
    return {
        "source": "runs:/" + "0" * 32 + "/model",
        "artifact_digest": DIGEST,
        "flavor": "sklearn",
        "created_by": "alice",
        **extra,
    }


def _error(response, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body["message"]


@pytest.fixture
def churn(client: TestClient) -> TestClient:
    """A client whose server has model "churn" with versions 1 and 2."""
    for _ in range(2):
        assert client.post(f"{API}/models/churn/versions", json=_version_body()).status_code == 201
    return client


# -- happy paths -------------------------------------------------------------------------
def test_models_are_created_listed_updated_and_deleted(client: TestClient) -> None:
    r = client.post(f"{API}/models", json={"name": "churn", "description": "d", "tags": {"t": "1"}})
    assert r.status_code == 201
    assert r.json()["name"] == "churn"
    assert r.json()["tags"] == {"t": "1"}
    assert r.json()["latest_version"] == 0
    client.post(f"{API}/models", json={"name": "alpha"})
    assert [m["name"] for m in client.get(f"{API}/models").json()["models"]] == ["alpha", "churn"]
    r = client.patch(f"{API}/models/churn", json={"description": "new"})
    assert r.json()["description"] == "new"
    assert client.get(f"{API}/models/churn").json()["description"] == "new"
    assert (
        client.put(f"{API}/models/churn/tags/team/owner", json={"value": "ml"}).status_code == 204
    )
    assert client.get(f"{API}/models/churn").json()["tags"] == {"t": "1", "team/owner": "ml"}
    assert client.delete(f"{API}/models/churn").status_code == 204
    _error(client.get(f"{API}/models/churn"), 404, "NOT_FOUND")


def test_versions_carry_their_fields_and_non_finite_metrics(client: TestClient) -> None:
    body = _version_body(
        metrics={"auc": 0.9, "loss": "NaN", "up": "Infinity", "down": "-Infinity", "n": 3},
        signature={"inputs": {"columns": [{"name": "x", "type": "double"}]}},
        input_example=[[1.0, 2.0]],
        description="first",
        model_card="body",
        run_id=None,
    )
    r = client.post(f"{API}/models/churn/versions", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["version"] == 1
    assert created["metrics"] == {
        "auc": 0.9,
        "loss": "NaN",
        "up": "Infinity",
        "down": "-Infinity",
        "n": 3.0,
    }
    assert created["aliases"] == []
    assert client.get(f"{API}/models/churn/versions/1").json() == created
    client.post(f"{API}/models/churn/versions", json=_version_body())
    versions = client.get(f"{API}/models/churn/versions").json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    r = client.patch(f"{API}/models/churn/versions/1", json={"description": "changed"})
    assert r.json()["description"] == "changed"
    r = client.put(f"{API}/models/churn/versions/1/tags/stage", json={"value": "prod"})
    assert r.status_code == 204
    assert client.get(f"{API}/models/churn/versions/1").json()["tags"] == {"stage": "prod"}


def test_model_cards_are_stored_and_titled(churn: TestClient) -> None:
    assert (
        churn.put(f"{API}/models/churn/versions/2/card", json={"card": "\nhi"}).status_code == 204
    )
    card = churn.get(f"{API}/models/churn/versions/2/card").json()["card"]
    assert card.startswith("# churn — version 2")
    assert card.endswith("hi")


def test_aliases_move_and_leave_history(churn: TestClient) -> None:
    r = churn.put(f"{API}/models/churn/aliases/champion", json={"version": 1, "actor": "alice"})
    assert r.json()["version"] == 1
    assert r.json()["previous_version"] is None
    r = churn.put(f"{API}/models/churn/aliases/champion", json={"version": 2, "actor": "bob"})
    assert (r.json()["previous_version"], r.json()["version"]) == (1, 2)
    assert churn.get(f"{API}/models/churn/aliases/champion").json()["version"] == 2
    assert churn.get(f"{API}/models/churn/versions/2").json()["aliases"] == ["champion"]
    churn.put(f"{API}/models/churn/aliases/challenger", json={"version": 1, "actor": "bob"})
    r = churn.delete(f"{API}/models/churn/aliases/challenger", params={"actor": "carol"})
    assert r.json() == {**r.json(), "version": None, "previous_version": 1, "changed_by": "carol"}
    history = churn.get(f"{API}/models/churn/alias-history").json()["history"]
    assert [(h["alias"], h["version"]) for h in history] == [
        ("champion", 1),
        ("champion", 2),
        ("challenger", 1),
        ("challenger", None),
    ]
    only = churn.get(f"{API}/models/churn/alias-history", params={"alias": "champion"}).json()
    assert [h["changed_by"] for h in only["history"]] == ["alice", "bob"]


# -- refusals ----------------------------------------------------------------------------
def test_unknown_models_versions_and_aliases_are_404(churn: TestClient) -> None:
    for method, path, body in [
        ("GET", "/models/nope", None),
        ("PATCH", "/models/nope", {"description": "x"}),
        ("DELETE", "/models/nope", None),
        ("PUT", "/models/nope/tags/k", {"value": "v"}),
        ("GET", "/models/nope/versions", None),
        ("GET", "/models/churn/versions/9", None),
        ("PATCH", "/models/churn/versions/9", {"description": "x"}),
        ("GET", "/models/churn/versions/9/card", None),
        ("PUT", "/models/churn/versions/9/card", {"card": "x"}),
        ("PUT", "/models/churn/versions/9/tags/k", {"value": "v"}),
        ("PUT", "/models/churn/aliases/champion", {"version": 9, "actor": "a"}),
        ("GET", "/models/churn/aliases/champion", None),
        ("DELETE", "/models/churn/aliases/champion?actor=a", None),
        ("GET", "/models/nope/alias-history", None),
        ("GET", "/models/churn/no-such-thing", None),
    ]:
        response = churn.request(method, API + path, json=body)
        _error(response, 404, "NOT_FOUND")


def test_a_version_of_a_missing_model_is_404_unless_created(client: TestClient) -> None:
    body = _version_body(create_model=False)
    _error(client.post(f"{API}/models/new/versions", json=body), 404, "NOT_FOUND")
    assert client.post(f"{API}/models/new/versions", json=_version_body()).status_code == 201


def test_a_taken_name_is_409(churn: TestClient) -> None:
    _error(churn.post(f"{API}/models", json={"name": "churn"}), 409, "ALREADY_EXISTS")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a/b"},
        {"name": "a@b"},
        {"name": "a:b"},
        {"name": " "},
        {"name": ""},
        {"name": "x" * 300},
        {"name": "bad\x00name"},
        {"name": 5},
        {"name": None},
        {},
        [],
        "churn",
        {"name": "ok", "tags": {"k": 1}},
        {"name": "ok", "tags": {" k": "v"}},
        {"name": "ok", "description": 3},
        {"name": "ok", "unknown": True},
    ],
)
def test_bad_model_bodies_are_400(client: TestClient, body: object) -> None:
    _error(client.post(f"{API}/models", json=body), 400, "INVALID_INPUT")


@pytest.mark.parametrize(
    "change",
    [
        {"source": None},
        {"artifact_digest": "not-hex"},
        {"artifact_digest": "a" * 65},
        {"flavor": "f" * 65},
        {"run_id": "short"},
        {"metrics": {"auc": "high"}},
        {"metrics": {"auc": True}},
        {"metrics": {"auc": None}},
        {"metrics": ["auc"]},
        {"metrics": {" spaced": 1.0}},
        {"signature": "text"},
        {"signature": {"inputs": 2**64}},  # stored, it could never be sent back
        {"input_example": [[1.0, 2**70]]},
        {"create_model": "yes"},
        {"created_by": 7},
    ],
)
def test_bad_version_bodies_are_400(client: TestClient, change: dict[str, object]) -> None:
    body = {k: v for k, v in {**_version_body(), **change}.items() if v is not None}
    _error(client.post(f"{API}/models/churn/versions", json=body), 400, "INVALID_INPUT")
    _error(client.get(f"{API}/models/churn"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/models/churn/versions/0", None),
        ("GET", "/models/churn/versions/-1", None),
        ("GET", "/models/churn/versions/abc", None),
        ("GET", "/models/churn/versions/99999999999999999999", None),
        ("GET", "/models/churn/versions/1.5", None),
        ("PUT", "/models/churn/aliases/latest", {"version": 1, "actor": "a"}),
        ("PUT", "/models/churn/aliases/1bad", {"version": 1, "actor": "a"}),
        ("PUT", "/models/churn/aliases/champion", {"version": 0, "actor": "a"}),
        ("PUT", "/models/churn/aliases/champion", {"version": "1", "actor": "a"}),
        ("PUT", "/models/churn/aliases/champion", {"version": 2**40, "actor": "a"}),
        ("PUT", "/models/churn/aliases/champion", {"version": 1}),
        ("PUT", "/models/churn/aliases/champion", {"version": 1, "actor": ""}),
        ("GET", "/models/churn/aliases/no%20way", None),
        ("DELETE", "/models/churn/aliases/champion", None),
        ("GET", "/models/churn/alias-history?alias=1bad", None),
        ("PATCH", "/models/churn", {"description": ["x"]}),
        ("PATCH", "/models/churn/versions/1", {"description": 1}),
        ("PUT", "/models/churn/versions/1/card", {}),
        ("PUT", "/models/churn/versions/1/card", {"card": None}),
        ("PUT", "/models/churn/tags/k", {"value": 1}),
        ("PUT", "/models/churn/tags/%20k", {"value": "v"}),
        ("PUT", "/models/churn/versions/1/tags/k", {}),
        ("GET", "/models/a:b", None),
        ("GET", "/models/a@b/versions", None),
    ],
)
def test_bad_parameters_are_400(churn: TestClient, method: str, path: str, body: object) -> None:
    _error(churn.request(method, API + path, json=body), 400, "INVALID_INPUT")


@pytest.mark.parametrize(
    "path",
    ["/models/..", "/models/../x", "/models/%2E%2E", "/models/..%2Fx", "/models/%2e%2e%2fetc"],
)
def test_hostile_names_are_refused_not_crashed(client: TestClient, path: str) -> None:
    response = client.get(API + path)
    assert response.status_code in (400, 404), response.text
    assert set(response.json()) == {"error_code", "message"}


@pytest.mark.parametrize(
    "content",
    [b"{bad json", b"", b"null", b"\xff\xfe", b'{"name": "x",}', b"[1, 2"],
)
def test_malformed_json_is_400(client: TestClient, content: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    for path in ("/models", "/models/churn/versions"):
        response = client.post(API + path, content=content, headers=headers)
        _error(response, 400, "INVALID_INPUT")


def test_oversized_bodies_are_413(churn: TestClient) -> None:
    from keel.server.routes.models import MAX_BODY_BYTES

    big = b'{"card": "' + b"x" * MAX_BODY_BYTES + b'"}'
    headers = {"Content-Type": "application/json"}
    path = f"{API}/models/churn/versions/1/card"
    _error(churn.put(path, content=big, headers=headers), 413, "PAYLOAD_TOO_LARGE")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"card": "'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    _error(churn.put(path, content=chunks(), headers=headers), 413, "PAYLOAD_TOO_LARGE")
    lying = {**headers, "Content-Length": "abc"}
    assert churn.put(path, content=b"{}", headers=lying).status_code in (400, 413)


# -- the REST store against a live server --------------------------------------------------
@pytest.fixture
def rest(tmp_path: Path) -> Iterator[object]:
    from tests.live_server import running_server

    from keel.client.http import KeelHttp
    from keel.client.registry import RestRegistryStore

    with running_server(tmp_path / "server-home") as url:
        http = KeelHttp(url)
        try:
            yield RestRegistryStore(http)
        finally:
            http.close()


def test_the_rest_store_rebuilds_the_same_entities(rest) -> None:  # type: ignore[no-untyped-def]
    fields = _version_body(
        metrics={"auc": 0.5, "loss": math.nan, "up": math.inf, "down": -math.inf},
        input_example={"x": [1, 2]},
        extra_key="ignored like the SQL store does",
    )
    created = rest.create_model_version("odd name ?#%", fields)
    got = rest.get_model_version("odd name ?#%", 1)
    assert replace(got, metrics={}) == replace(created, metrics={})
    assert got.metrics.keys() == created.metrics.keys()
    assert math.isnan(got.metrics["loss"])
    assert (got.metrics["up"], got.metrics["down"], got.metrics["auc"]) == (
        math.inf,
        -math.inf,
        0.5,
    )
    assert got.input_example == {"x": [1, 2]}
    rest.set_version_tag("odd name ?#%", 1, "a/b", "c")
    change = rest.set_alias("odd name ?#%", "champion", 1, actor="alice")
    assert (change.version, change.previous_version, change.changed_by) == (1, None, "alice")
    by_alias = rest.get_version_by_alias("odd name ?#%", "champion")
    assert by_alias.aliases == ("champion",)
    assert by_alias.tags == {"a/b": "c"}
    assert rest.alias_history("odd name ?#%", "champion") == [change]
    assert rest.delete_alias("odd name ?#%", "champion", actor="bob").version is None
    rest.set_model_card("odd name ?#%", 1, "\nbody")
    assert rest.get_model_card("odd name ?#%", 1).endswith("body")
    assert [m.name for m in rest.list_registered_models()] == ["odd name ?#%"]
    model = rest.update_registered_model("odd name ?#%", description="d")
    assert (model.description, model.latest_version) == ("d", 1)
    assert rest.update_model_version("odd name ?#%", 1, description="v").description == "v"
    assert [v.version for v in rest.list_model_versions("odd name ?#%")] == [1]
    rest.delete_registered_model("odd name ?#%")
    assert rest.list_registered_models() == []


def test_the_rest_store_raises_the_sql_stores_errors(rest) -> None:  # type: ignore[no-untyped-def]
    rest.create_registered_model("churn", tags={"k": "v"})
    with pytest.raises(AlreadyExists, match="churn"):
        rest.create_registered_model("churn")
    with pytest.raises(NotFound, match="no registered model named 'nope'"):
        rest.get_registered_model("nope")
    with pytest.raises(NotFound, match="has no version 3"):
        rest.get_model_version("churn", 3)
    with pytest.raises(NotFound, match="no alias"):
        rest.get_version_by_alias("churn", "champion")
    with pytest.raises(NotFound):
        rest.create_model_version("other", _version_body(), create_model=False)
    with pytest.raises(InvalidInput, match="reserved"):
        rest.set_alias("churn", "latest", 1, actor="a")
    with pytest.raises(NotFound):
        rest.get_registered_model("..")
