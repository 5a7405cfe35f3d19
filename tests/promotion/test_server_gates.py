"""POST /api/v1/promotions on a live server (auth off): the server evaluates the gates of
its own environments on its own data; a posted verdict is refused; bad bodies are 4xx."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import KeelEnv
from tests.promotion._setup import CONFIG, SERVER_HOME, Churn, register_churn, write_config

import keel
from keel.promotion import promote, promotion_history
from keel.server.routes.promotions import MAX_BODY

API = "/api/v1/promotions"
SERVER = pytest.mark.parametrize("backend", ["rest"], indirect=True)


@pytest.fixture
def churn(backend: KeelEnv) -> Churn:
    write_config(backend.home)
    found = register_churn(backend.home.parent)
    keel.set_alias("churn", "prod", 1)
    return found


def _http(backend: KeelEnv) -> httpx.Client:
    return httpx.Client(base_url=backend.tracking_uri, timeout=60)


def _aliases() -> dict[str, int]:
    return dict(keel.get_registered_model("churn").aliases)


@SERVER
def test_a_forged_passing_result_is_refused_and_the_server_records_its_own(
    churn: Churn, backend: KeelEnv
) -> None:
    # churn/2 has accuracy 0.93: the "strict" environment's gate (>= 0.999) fails it.
    forged = {
        "model": "churn",
        "version": 2,
        "environment": "strict",
        "alias": "strict",
        "outcome": "promoted",
        "dry_run": False,
        "gates": [{"kind": "metric", "name": "accuracy >= 0.999", "passed": True, "reason": ""}],
        "reason": "every gate passed",
    }
    with _http(backend) as http:
        refused = http.post(API, json=forged)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error_code"] == "INVALID_INPUT"
        assert "decided by the server" in refused.json()["message"]
        for key in ("outcome", "gates", "reason"):
            one = {"model": "churn", "version": 2, "environment": "strict", key: forged[key]}
            assert http.post(API, json=one).status_code == 400
        assert promotion_history() == []
        assert "strict" not in _aliases()
        asked = http.post(API, json={"model": "churn", "version": 2, "environment": "strict"})
    assert asked.status_code == 201, asked.text
    record = asked.json()
    assert (record["outcome"], record["passed"]) == ("refused", False)
    assert record["reasons"] == ["accuracy = 0.93 fails accuracy >= 0.999"]
    assert "strict" not in _aliases()
    [stored] = promotion_history()
    assert stored.to_dict() == record


@SERVER
def test_the_servers_environments_decide_not_the_clients(churn: Churn, backend: KeelEnv) -> None:
    lenient = CONFIG.replace('metrics = ["accuracy >= 0.999"]', 'metrics = ["accuracy >= 0.5"]')
    # The client's config says "strict" passes anything above 0.5; the server's does not.
    (backend.home / "config.toml").write_text(lenient, encoding="utf-8")
    assert (backend.home.parent / SERVER_HOME / "config.toml").read_text() == CONFIG
    result = promote("models:/churn/2", to="strict")
    assert result.outcome == "refused"
    assert result.reasons == ["accuracy = 0.93 fails accuracy >= 0.999"]
    # The server reads its config.toml at each promotion: a changed gate applies at once.
    (backend.home.parent / SERVER_HOME / "config.toml").write_text(lenient, encoding="utf-8")
    assert promote("models:/churn/2", to="strict").promoted
    assert _aliases()["strict"] == 2


@SERVER
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "INVALID_INPUT"),
        ([], 400, "INVALID_INPUT"),
        ("churn", 400, "INVALID_INPUT"),
        ({"model": "churn", "version": "2", "environment": "strict"}, 400, "INVALID_INPUT"),
        ({"model": "churn", "version": 2.0, "environment": "strict"}, 400, "INVALID_INPUT"),
        ({"model": "churn", "version": 0, "environment": "strict"}, 400, "INVALID_INPUT"),
        ({"model": "churn", "version": 2**31, "environment": "strict"}, 400, "INVALID_INPUT"),
        ({"model": "churn", "version": 2, "environment": "a b"}, 400, "INVALID_INPUT"),
        ({"model": "churn", "version": 2, "environment": ["strict"]}, 400, "INVALID_INPUT"),
        ({"model": "../etc", "version": 2, "environment": "strict"}, 400, "INVALID_INPUT"),
        (
            {"model": "churn", "version": 2, "environment": "strict", "dry_run": "yes"},
            400,
            "INVALID_INPUT",
        ),
        (
            {"model": "churn", "version": 2, "environment": "strict", "extra": 1},
            400,
            "INVALID_INPUT",
        ),
        ({"model": "churn", "version": 2, "environment": "badexpr"}, 400, "INVALID_INPUT"),
        ({"model": "churn", "version": 99, "environment": "strict"}, 404, "NOT_FOUND"),
        ({"model": "nope", "version": 1, "environment": "strict"}, 404, "NOT_FOUND"),
        ({"model": "churn", "version": 2, "environment": "qa"}, 404, "NOT_FOUND"),
        ({"model": "churn", "version": 2, "environment": "nofile"}, 404, "NOT_FOUND"),
    ],
)
def test_bad_promotion_bodies_are_json_errors(
    churn: Churn, backend: KeelEnv, body: object, status: int, code: str
) -> None:
    with _http(backend) as http:
        response = http.post(API, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert response.json()["message"]
    assert promotion_history() == []
    assert _aliases() == {"prod": 1}


@SERVER
def test_unparsable_and_huge_bodies_are_json_errors(churn: Churn, backend: KeelEnv) -> None:
    headers = {"content-type": "application/json"}
    huge = b'{"model": "' + b"x" * MAX_BODY + b'", "version": 2, "environment": "strict"}'
    with _http(backend) as http:
        broken = http.post(API, content=b'{"model": "churn", "version": ', headers=headers)
        assert broken.status_code == 400, broken.text
        assert broken.json()["error_code"] == "INVALID_INPUT"
        for path in (API, f"{API}/approvals"):
            big = http.post(path, content=huge, headers=headers)
            assert big.status_code == 413, big.text
            assert big.json()["error_code"] == "PAYLOAD_TOO_LARGE"

            def chunks() -> object:  # no content-length: the cap holds while streaming
                yield huge

            streamed = http.post(path, content=chunks(), headers=headers)
            assert streamed.status_code == 413, streamed.text
        empty = http.post(API, content=b"", headers=headers)
        assert empty.status_code == 400, empty.text
    assert promotion_history() == []
