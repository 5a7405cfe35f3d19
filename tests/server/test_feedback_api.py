"""``POST /api/v1/deployments/{name}/feedback`` and ``keel.log_feedback``: ground truth in,
feedback segments out, every bad input a 4xx / ``KeelError`` naming what is wrong."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from tests.conftest import KeelEnv
from tests.deploy._control import register_versions

from keel.errors import InvalidInput, NotFound
from keel.monitoring.feedback import MAX_FEEDBACK, log_feedback
from keel.monitoring.prediction_read import read_feedback

URL = "/api/v1/deployments/churn-prod/feedback"


@pytest.fixture
def deployed(keel_env: KeelEnv) -> KeelEnv:
    import keel

    register_versions("m", 1)
    keel.create_deployment("churn-prod", "models:/m/1")
    return keel_env


@pytest.fixture
def client(deployed: KeelEnv) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(deployed.home))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body["message"]


def test_feedback_is_written_and_read_back(client: TestClient) -> None:
    body = {
        "feedback": [
            {"request_id": "r1", "row": 0, "target": 1},
            {"request_id": "r1", "row": 1, "target": 0.5},
            {"request_id": "r2", "target": "churned"},
        ]
    }
    answer = client.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"written": 3}
    df = read_feedback("churn-prod")
    assert df["request_id"].tolist() == ["r1", "r1", "r2"]
    assert df["row"].tolist() == [0, 1, 0]
    assert df["target"].tolist()[:2] == [1.0, 0.5]
    assert np.isnan(df["target"].iloc[2])
    assert df["target_label"].tolist()[2] == "churned"
    assert df["target_label"].iloc[:2].isna().all()


def test_an_unknown_deployment_is_404(client: TestClient) -> None:
    body = {"feedback": [{"request_id": "r1", "target": 1}]}
    message = _error(client.post("/api/v1/deployments/nope/feedback", json=body), 404, "NOT_FOUND")
    assert "nope" in message


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "not JSON"),
        (b"[]", "feedback"),
        (b'{"feedback": "x"}', "feedback"),
        (b'{"feedback": [], "more": 1}', "unknown field"),
        (b'{"feedback": []}', "empty"),
        (b'{"feedback": [1]}', "feedback\\[0\\]"),
        (b'{"feedback": [{"request_id": "r"}]}', "feedback\\[0\\]"),
        (b'{"feedback": [{"request_id": "r", "target": 1, "x": 2}]}', "unknown field"),
        (b'{"feedback": [{"request_id": "", "target": 1}]}', "request id"),
        (b'{"feedback": [{"request_id": 5, "target": 1}]}', "request id"),
        (b'{"feedback": [{"request_id": "a\\u0000b", "target": 1}]}', "unprintable"),
        (b'{"feedback": [{"request_id": "r", "target": null}]}', "target"),
        (b'{"feedback": [{"request_id": "r", "target": {"a": 1}}]}', "target"),
        (b'{"feedback": [{"request_id": "r", "target": [1]}]}', "target"),
        (b'{"feedback": [{"request_id": "r", "target": 1, "row": -1}]}', "row"),
        (b'{"feedback": [{"request_id": "r", "target": 1, "row": "0"}]}', "row"),
        (b'{"feedback": [{"request_id": "r", "target": 1, "row": true}]}', "row"),
        (b'{"feedback": [{"request_id": "r", "target": 1, "row": 1.5}]}', "row"),
        (b'{"feedback": [{"request_id": "r", "target": 1e999}]}', "infinity|finite"),
    ],
)
def test_bad_bodies_are_400(client: TestClient, body: bytes, match: str) -> None:
    answer = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    message = _error(answer, 400, "INVALID_INPUT")
    assert re.search(match, message), message


def test_too_many_items_and_huge_bodies_are_400(client: TestClient) -> None:
    many = {"feedback": [{"request_id": "r", "target": 1}] * (MAX_FEEDBACK + 1)}
    assert "at most" in _error(client.post(URL, json=many), 400, "INVALID_INPUT")
    huge = b'{"feedback": [' + b" " * (17 * 1024 * 1024) + b"]}"
    answer = client.post(URL, content=huge, headers={"Content-Type": "application/json"})
    assert "exceeds" in _error(answer, 400, "INVALID_INPUT")
    assert read_feedback("churn-prod").empty


def test_with_auth_on_it_needs_an_editor(deployed: KeelEnv) -> None:
    from keel.config import load_settings
    from keel.governance.auth import Role, auth_store
    from keel.server import create_app
    from keel.stores import open_stores

    settings = load_settings(deployed.home)
    stores = open_stores(settings)
    auth = auth_store(stores)
    auth.create_user("eve", role=Role.EDITOR)
    auth.create_user("vic")
    tokens = {name: auth.create_token(name).token for name in ("eve", "vic")}
    body = {"feedback": [{"request_id": "r1", "target": 1}]}
    app = create_app(settings=settings, stores=stores, auth=True)
    with TestClient(app, raise_server_exceptions=False) as c:
        _error(c.post(URL, json=body), 401, "UNAUTHENTICATED")
        viewer = {"Authorization": f"Bearer {tokens['vic']}"}
        _error(c.post(URL, json=body, headers=viewer), 403, "PERMISSION_DENIED")
        editor = {"Authorization": f"Bearer {tokens['eve']}"}
        assert c.post(URL, json=body, headers=editor).json() == {"written": 1}


def test_log_feedback_locally_one_and_many(deployed: KeelEnv) -> None:
    assert log_feedback("churn-prod", "r1", 1.0) == 1
    assert log_feedback("churn-prod", ["a", "b", "c"], np.array([0, 1, 1]), row=[0, 0, 2]) == 3
    assert log_feedback("churn-prod", np.array(["d", "e"]), ["yes", "no"], row=np.int64(4)) == 2
    df = read_feedback("churn-prod")
    assert sorted(df["request_id"]) == ["a", "b", "c", "d", "e", "r1"]
    assert df.set_index("request_id").loc["c", "row"] == 2
    assert df.set_index("request_id").loc["e", "target_label"] == "no"


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        (("nope", "r1", 1.0), NotFound, "nope"),
        (("../x", "r1", 1.0), InvalidInput, "deployment"),
        (("churn-prod", "", 1.0), InvalidInput, "request id"),
        (("churn-prod", None, 1.0), InvalidInput, "request id"),
        (("churn-prod", "x" * 300, 1.0), InvalidInput, "request id"),
        (("churn-prod", "r1", None), InvalidInput, "target"),
        (("churn-prod", "r1", float("nan")), InvalidInput, "finite"),
        (("churn-prod", "r1", b"yes"), InvalidInput, "target"),
        (("churn-prod", "r1", [1.0]), InvalidInput, "scalars"),
        (("churn-prod", ["a", "b"], [1.0]), InvalidInput, "2 targets"),
        (("churn-prod", ["a", "b"], 1.0), InvalidInput, "2 targets"),
        (("churn-prod", [], []), InvalidInput, "empty"),
        (
            ("churn-prod", ["a"] * (MAX_FEEDBACK + 1), [1] * (MAX_FEEDBACK + 1)),
            InvalidInput,
            "at most",
        ),
        (("churn-prod", ["a", 3], [1, 2]), InvalidInput, "feedback\\[1\\]"),
    ],
)
def test_bad_log_feedback_arguments(
    deployed: KeelEnv, arguments: tuple[Any, ...], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        log_feedback(*arguments)
    assert read_feedback("churn-prod").empty


@pytest.mark.parametrize("row", [-1, True, 1.5, "0", 2**31, [0, 1]])
def test_bad_rows(deployed: KeelEnv, row: Any) -> None:
    with pytest.raises(InvalidInput, match="row"):
        log_feedback("churn-prod", "r1", 1.0, row=row)
