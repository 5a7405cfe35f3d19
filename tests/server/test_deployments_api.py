"""The deployments REST API: happy paths, refusals (4xx, never 500), and a live canary."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from tests.conftest import KeelEnv
from tests.deploy._control import register_versions

API = "/api/v1/deployments"
D = f"{API}/churn-prod"
INVALID = (400, "INVALID_INPUT")
CANARY = {"model": "m/2", "strategy": "canary"}


@pytest.fixture
def client(keel_env: KeelEnv) -> Iterator[TestClient]:
    """A server (with its data plane) on a home holding model "m" versions 1 to 3."""
    from keel.config import load_settings
    from keel.server import create_app

    register_versions("m", 3)
    app = create_app(settings=load_settings(keel_env.home))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _error(response, status: int, code: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body["message"]


def _create(client: TestClient, name: str = "churn-prod", model: str = "models:/m/1") -> dict:
    response = client.post(API, json={"name": name, "model": model, "environment": "prod"})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_get_list_history_stats_and_delete(client: TestClient) -> None:
    created = _create(client)
    assert created["plan"]["backends"] == [
        {"model": "m", "version": 1, "weight": 100.0, "role": "stable"}
    ]
    assert client.get(f"{API}/churn-prod").json() == created
    assert [d["name"] for d in client.get(API).json()["deployments"]] == ["churn-prod"]
    assert client.get(API, params={"environment": "qa"}).json() == {"deployments": []}
    (entry,) = client.get(f"{API}/churn-prod/history").json()["history"]
    assert entry["action"] == "create"
    stats = client.get(f"{API}/churn-prod/stats").json()
    assert stats["serving_revision"] == 1  # the server's data plane serves it
    assert client.delete(f"{API}/churn-prod").status_code == 204
    _error(client.get(f"{API}/churn-prod"), 404, "NOT_FOUND")


def test_changes_are_recorded_as_the_actor_the_client_names(client: TestClient) -> None:
    _create(client)
    moved = client.put(
        f"{D}/traffic", json={"weights": {"m/1": 100}}, headers={"Keel-Actor": "ada"}
    )
    assert moved.status_code == 200, moved.text
    assert client.get(f"{D}/history").json()["history"][-1]["actor"] == "ada"
    refused = client.post(f"{D}/rollback", json={}, headers={"Keel-Actor": "x" * 300})
    _error(refused, 400, "INVALID_INPUT")


def test_blue_green_switches_and_rollback_is_instant(client: TestClient) -> None:
    _create(client)
    dep = client.post(f"{API}/churn-prod/rollouts", json={"model": "models:/m/2"}).json()
    assert dep["status"] == "serving"
    assert [(b["version"], b["role"]) for b in dep["plan"]["backends"]] == [
        (2, "stable"), (1, "standby"),
    ]  # fmt: skip
    back = client.post(f"{API}/churn-prod/rollback", json={}).json()
    assert back["plan"]["backends"][0]["version"] == 1
    history = client.get(f"{API}/churn-prod/history").json()["history"]
    assert "instant" in history[-1]["reason"]
    assert client.get(f"{API}/churn-prod/stats").json()["serving_revision"] == back["revision"]


def test_a_canary_under_live_traffic_steps_and_promotes(client: TestClient) -> None:
    from sklearn.datasets import load_iris

    _create(client)
    # Latency on this shared 2-core machine is noise, not the point here (the gate's p99
    # check is tested on fixed figures): allow any p99, judge errors.
    config = {
        "steps": [50, 100], "interval_s": 0.2, "min_requests": 5, "max_wait": 10_000,
        "max_p99_ratio": 1000, "p99_slack_ms": 60_000,
    }  # fmt: skip
    started = client.post(
        f"{API}/churn-prod/rollouts",
        json={"model": "m/2", "strategy": "canary", "config": config},
    )
    assert started.json()["status"] == "canary step 1/2", started.text
    X = load_iris(as_frame=True).data.head(2)
    body = {"dataframe_split": {"columns": list(X.columns), "data": X.to_numpy().tolist()}}
    status = None
    for _ in range(3000):  # bounded: the controller ticks every 0.5 s meanwhile
        answer = client.post("/deployments/churn-prod/invocations", json=body)
        assert answer.status_code == 200, answer.text
        status = client.get(f"{API}/churn-prod").json()["rollout"]["status"]
        if status != "running":
            break
    history = client.get(f"{API}/churn-prod/history").json()["history"]
    assert status == "promoted", history[-1]["reason"]
    assert [h["action"] for h in history] == ["create", "rollout.canary", "canary.step", "promote"]
    assert {h["actor"] for h in history[2:]} == {"controller"}
    assert "gate passed at step 1/2" in history[2]["reason"]


def test_a_canary_is_paused_and_resumed_through_the_api(client: TestClient) -> None:
    _create(client)
    slow = {"steps": [20, 100], "interval_s": 3600}  # no step is due during the test
    client.post(f"{D}/rollouts", json={**CANARY, "config": slow}).raise_for_status()
    paused = client.post(f"{D}/pause")
    assert paused.status_code == 200, paused.text
    assert "paused" in paused.json()["rollout"]["summary"]
    assert client.post(f"{D}/pause").status_code == 409  # paused already
    backends = paused.json()["plan"]["backends"]
    weights = {f"{b['model']}/{b['version']}": b["weight"] for b in backends}
    assert weights == {"m/1": 80.0, "m/2": 20.0}  # traffic stays as it was
    resumed = client.post(f"{D}/resume")
    assert resumed.status_code == 200, resumed.text
    assert "paused" not in resumed.json()["rollout"]["summary"]
    assert resumed.json()["rollout"]["status"] == "running"
    actions = [h["action"] for h in client.get(f"{D}/history").json()["history"]]
    assert actions == ["create", "rollout.canary", "pause", "resume"]


def test_ab_outcomes_and_analysis(client: TestClient) -> None:
    _create(client)
    body = {"model": "m/2", "strategy": "ab", "config": {"min_samples": 2, "sticky_key": "user"}}
    assert client.post(f"{API}/churn-prod/rollouts", json=body).status_code == 200
    outcomes = [{"value": 1, "variant": "m/1"}, {"value": 0, "variant": "m/2"}] * 3
    outcomes.append({"value": 1, "request_key": "user-1"})
    recorded = client.post(f"{API}/churn-prod/outcomes", json={"outcomes": outcomes})
    assert recorded.json() == {"recorded": 7}
    analysis = client.get(f"{API}/churn-prod/analysis").json()
    assert sum(v["n"] for v in analysis["variants"]) == 7
    assert analysis["comparisons"][0]["test"] == "two-proportion z-test"


def test_a_reload_swaps_fresh_services_in_and_is_audited(client: TestClient) -> None:
    from sklearn.datasets import load_iris

    from keel.governance.audit import audit_log

    _create(client)
    router = client.app.state.deployment_router  # type: ignore[attr-defined]
    before = router.table("churn-prod").routes["m/1"].slot
    reloaded = client.post(f"{D}/reload", headers={"Keel-Actor": "ada"})
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json() == {"deployment": "churn-prod", "reloaded": ["m/1"]}
    assert router.table("churn-prod").routes["m/1"].slot is not before
    X = load_iris(as_frame=True).data.head(2)
    body = {"dataframe_split": {"columns": list(X.columns), "data": X.to_numpy().tolist()}}
    answered = client.post("/deployments/churn-prod/invocations", json=body)
    assert answered.status_code == 200, answered.text
    (entry,) = audit_log(action="deployment.reload")
    assert (entry.actor, entry.object_id) == ("ada", "churn-prod")
    assert entry.change == {"revision": 1, "backends": ["m/1"]}


def test_a_reload_of_a_deployment_not_served_here_is_409(client: TestClient) -> None:
    _create(client)
    state = client.app.state  # type: ignore[attr-defined]
    router, state.deployment_router = state.deployment_router, None
    try:
        message = _error(client.post(f"{D}/reload"), 409, "CONFLICT")
    finally:
        state.deployment_router = router
    assert "not being served by this server's data plane" in message


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", API, {}, *INVALID),
        ("post", API, {"name": "x", "model": "m/1", "colour": 1}, *INVALID),
        ("post", API, {"name": "x" * 129, "model": "m/1"}, *INVALID),
        ("post", API, {"name": "a/b", "model": "m/1"}, *INVALID),
        ("post", API, {"name": "x", "model": 1}, *INVALID),
        ("post", API, {"name": "x", "model": "m/99"}, 404, "NOT_FOUND"),
        ("post", API, {"name": "churn-prod", "model": "m/1"}, 409, "ALREADY_EXISTS"),
        ("get", f"{API}/nope", None, 404, "NOT_FOUND"),
        ("get", f"{API}/{'x' * 200}", None, *INVALID),
        ("get", f"{API}/nope/history", None, 404, "NOT_FOUND"),
        ("get", f"{D}/history?limit=0", None, *INVALID),
        ("get", f"{D}/history?limit=abc", None, *INVALID),
        ("get", f"{API}/nope/stats", None, 404, "NOT_FOUND"),
        ("delete", f"{API}/nope", None, 404, "NOT_FOUND"),
        ("post", f"{API}/nope/rollouts", {"model": "m/2"}, 404, "NOT_FOUND"),
        ("post", f"{D}/rollouts", {"model": "m/2", "strategy": "x"}, *INVALID),
        ("post", f"{D}/rollouts", {"model": "m/2", "config": []}, *INVALID),
        ("post", f"{D}/rollouts", {**CANARY, "config": {"steps": [1e308, 100]}}, *INVALID),
        ("post", f"{D}/rollouts", {**CANARY, "config": {"steps": 2**70}}, *INVALID),
        ("post", f"{D}/rollouts", {"model": "m/1", "strategy": "canary"}, 409, "CONFLICT"),
        ("put", f"{D}/traffic", {"weights": {}}, *INVALID),
        ("put", f"{D}/traffic", {"weights": {"m/1": 50}}, *INVALID),
        ("put", f"{D}/traffic", {"weights": {"m/1": "50", "m/2": 50}}, *INVALID),
        ("put", f"{D}/traffic", {"weights": {f"m/{i}": 1 for i in range(1, 30)}}, *INVALID),
        ("post", f"{D}/promote", {}, 409, "CONFLICT"),
        ("post", f"{D}/abort", None, 409, "CONFLICT"),
        ("post", f"{D}/pause", None, 409, "CONFLICT"),
        ("post", f"{D}/resume", None, 409, "CONFLICT"),
        ("post", f"{API}/nope/pause", None, 404, "NOT_FOUND"),
        ("post", f"{D}/rollback", {}, 409, "CONFLICT"),
        ("post", f"{D}/rollback", {"to": "m/1"}, 409, "CONFLICT"),
        ("post", f"{D}/rollback", {"to": "../../x"}, *INVALID),
        ("post", f"{D}/outcomes", {"outcomes": []}, *INVALID),
        ("post", f"{D}/outcomes", {"outcomes": [{"value": 1}] * 10_001}, *INVALID),
        ("post", f"{D}/outcomes", {"outcomes": [{"value": 1, "variant": "m/1"}]}, 409, "CONFLICT"),
        ("get", f"{D}/analysis", None, 409, "CONFLICT"),
        ("post", f"{API}/nope/reload", None, 404, "NOT_FOUND"),
        ("post", f"{API}/{'x' * 200}/reload", None, *INVALID),
    ],
)  # fmt: skip
def test_refusals_are_4xx_with_a_keel_error(
    client: TestClient, method: str, path: str, body: object, status: int, code: str
) -> None:
    _create(client)
    response = client.request(method.upper(), path, json=body)
    _error(response, status, code)


def test_a_restarted_server_serves_every_deployment_at_its_rollout_step(keel_env: KeelEnv) -> None:
    from keel.config import load_settings
    from keel.server import create_app

    register_versions("m", 2)
    config = {"steps": [10, 100], "interval_s": 3600}
    with TestClient(create_app(settings=load_settings(keel_env.home))) as first:
        _create(first)
        body = {"model": "m/2", "strategy": "canary", "config": config}
        before = first.post(f"{D}/rollouts", json=body).json()
    with TestClient(create_app(settings=load_settings(keel_env.home))) as second:
        after = second.get(D).json()
        assert after["revision"] == before["revision"]
        assert after["rollout"]["step"] == 0
        assert after["rollout"]["step_started_at"] == before["rollout"]["step_started_at"]
        stats = second.get(f"{D}/stats").json()
        assert stats["serving_revision"] == before["revision"]  # resumed at start-up
        X = {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                         "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2]]}  # fmt: skip
        served = second.post("/deployments/churn-prod/invocations", json={"dataframe_split": X})
        assert served.status_code == 200, served.text
        assert served.headers.get("keel-backend") in ("m/1", "m/2")


def test_a_shadow_under_live_traffic_reports_agreement_and_keeps_it(client: TestClient) -> None:
    _create(client)
    started = client.post(f"{D}/rollouts", json={"model": "m/2", "strategy": "shadow"})
    assert started.json()["status"] == "shadowing", started.text
    X = {"columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                     "petal width (cm)"], "data": [[5.1, 3.5, 1.4, 0.2]]}  # fmt: skip
    shadow: dict = {}
    for _ in range(500):  # bounded: mirrored requests are answered in the background
        answer = client.post("/deployments/churn-prod/invocations", json={"dataframe_split": X})
        assert answer.headers.get("keel-backend") == "m/1"  # the shadow never answers
        figures = {s["backend"]: s for s in client.get(f"{D}/stats").json()["backends"]}
        shadow = figures.get("m/2", {})
        if shadow.get("requests", 0) >= 5 and "agreement" in shadow.get("extra", {}):
            break
    assert shadow["extra"]["agreement"] == 1.0  # the same model answers the same
    ended = client.post(f"{D}/abort").json()
    assert ended["rollout"]["status"] == "ended"
    summary = ended["rollout"]["summary"]["shadow"]
    assert summary["agreement"] == 1.0
    assert summary["requests"] >= 5
    assert client.get(D).json()["rollout"]["summary"] == ended["rollout"]["summary"]
