"""Deployments served by ``keel server``: OIP v2 (JSON and binary), MLflow /invocations,
metadata, readiness, bad input, sticky keys, auth, metrics and the lifespan's resume.

The app runs in-process through Starlette's TestClient with its lifespan on, on a home
where real scikit-learn versions are registered (``test_serving_support``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_serving_support import Models, build_models, keel_home

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from keel.deploy.traffic import Backend, Role, TrafficPlan

DEP = "churn-prod"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return build_models(tmp_path_factory.mktemp("deploy-http-home"))


def _app(home: Path, *, auth: bool = False) -> Any:
    from keel.config import load_settings
    from keel.server import create_app

    return create_app(settings=load_settings(home), auth=auth)


@pytest.fixture
def client(models: Models) -> Iterator[TestClient]:
    with keel_home(models.home), TestClient(_app(models.home)) as c:
        yield c


def apply(client: TestClient, plan: TrafficPlan) -> None:
    """Apply a plan on the app's own router, on the app's event loop."""
    client.portal.call(client.app.state.deployment_router.apply, plan)  # type: ignore[union-attr,attr-defined]


def one(key: str, *, name: str = DEP, revision: int = 1, sticky: str | None = None) -> TrafficPlan:
    model, _, version = key.partition("/")
    return TrafficPlan(name, revision, (Backend(model, int(version), 100),), sticky_key=sticky)


def columns_body(models: Models, start: int, n: int, **extra: Any) -> dict[str, Any]:
    rows = models.X.iloc[start : start + n]
    inputs = [
        {"name": c, "datatype": "FP64", "shape": [n], "data": rows[c].tolist()}
        for c in models.X.columns
    ]
    return {"inputs": inputs, **extra}


def matrix_body(models: Models, start: int, n: int) -> dict[str, Any]:
    rows = models.X.to_numpy()[start : start + n]
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [n, 30], "data": rows.tolist()}]}


def test_oip_infer_answers_like_the_estimator_and_names_the_version(
    client: TestClient, models: Models
) -> None:
    apply(client, one("cancer/1"))
    for body in (columns_body(models, 5, 4, id="req-7"), matrix_body(models, 5, 4)):
        r = client.post(f"/v2/models/{DEP}/infer", json=body)
        assert r.status_code == 200, r.text
        assert r.headers["keel-backend"] == "cancer/1"
        doc = r.json()
        assert (doc["model_name"], doc["model_version"]) == (DEP, "1")
        outputs = {o["name"]: o for o in doc["outputs"]}
        expected = models.predict("cancer/1", models.X.iloc[5:9])
        assert outputs["predict"]["data"] == expected.tolist()
        assert outputs["predict_proba"]["shape"] == [4, 2]
    assert (
        client.post(f"/v2/models/{DEP}/infer", json=columns_body(models, 0, 1, id="q")).json()["id"]
        == "q"
    )


def test_oip_binary_tensor_data_in_and_out(client: TestClient, models: Models) -> None:
    apply(client, one("cancer/2"))
    rows = models.X.to_numpy()[20:26]
    raw = rows.astype("<f8").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [6, 30],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    ).encode()
    r = client.post(
        f"/v2/models/{DEP}/infer",
        content=header + raw,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert r.status_code == 200, r.text
    length = int(r.headers["inference-header-content-length"])
    doc = json.loads(r.content[:length])
    (out,) = doc["outputs"]
    assert out["parameters"]["binary_data_size"] == 6 * 8
    got = np.frombuffer(r.content[length:], dtype="<i8")
    np.testing.assert_array_equal(got, models.predict("cancer/2", models.X.iloc[20:26]))


def test_metadata_readiness_and_health(client: TestClient, models: Models) -> None:
    apply(client, one("cancer/1"))
    meta = client.get(f"/v2/models/{DEP}").json()
    assert (meta["name"], meta["versions"]) == (DEP, ["1"])
    assert [i["name"] for i in meta["inputs"]] == list(models.X.columns)
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{DEP}/ready"):
        r = client.get(path)
        assert (r.status_code, r.content) == (200, b"")
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]


def test_an_unknown_deployment_is_404_in_each_protocol_shape(client: TestClient) -> None:
    for method, path in (
        ("GET", "/v2/models/nope"),
        ("GET", "/v2/models/nope/ready"),
        ("POST", "/v2/models/nope/infer"),
    ):
        r = client.request(method, path, json={"inputs": []})
        assert r.status_code == 404, (path, r.text)
        assert "nope" in r.json()["error"]
    r = client.post("/deployments/nope/invocations", json={"instances": [[1.0]]})
    assert r.status_code == 404
    assert r.json()["error_code"] == "NOT_FOUND"
    r = client.post(f"/v2/models/{'x' * 50_000}/infer", json={})
    assert r.status_code == 404
    assert len(r.content) < 400  # a hostile name is not echoed back whole


def test_mlflow_formats_through_invocations(client: TestClient, models: Models) -> None:
    apply(client, one("cancer/1"))
    rows = models.X.iloc[30:33]
    expected = models.predict("cancer/1", rows).tolist()
    bodies = [
        {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}},
        {"dataframe_records": rows.to_dict(orient="records")},
        {"instances": rows.to_numpy().tolist()},
        {"inputs": {c: rows[c].tolist() for c in rows.columns}},
    ]
    for body in bodies:
        r = client.post(f"/deployments/{DEP}/invocations", json=body)
        assert r.status_code == 200, (list(body), r.text)
        assert r.json() == {"predictions": expected}
        assert r.headers["keel-backend"] == "cancer/1"
    csv = rows.to_csv(index=False)
    r = client.post(
        f"/deployments/{DEP}/invocations", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert r.json() == {"predictions": expected}


def _tensor(name: str, datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def _req(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


BAD_OIP = [
    (b"", "not valid JSON"),
    (b"{nope", "not valid JSON"),
    (b"[]", "JSON object"),
    (_req(), "non-empty"),
    (_req(_tensor("x", "FP99", [1], [1])), "datatype"),
    (_req(_tensor("x", "FP64", [2, 30], [1.0])), "shape"),
    (_req(_tensor("x", "FP64", [1, 3], [1, 2, 3])), "[rows, 30]"),
    (_req(_tensor("a", "FP64", [1], [1]), _tensor("b", "FP64", [1], [1])), "unknown input"),
    (_req(_tensor("mean radius", "FP64", [1], [1])), "missing input"),
    (_req(_tensor("x", "BYTES", [1, 30], ["a"] * 30)), "expected numbers"),
    (_req(_tensor("x", "FP64", [1, 30], [1.0] * 30), outputs=[{"name": "nope"}]), "unknown output"),
    (_req(_tensor("x", "FP64", [1, 30], [1.0] * 30), id=7), "'id'"),
]


@pytest.mark.parametrize(("body", "fragment"), BAD_OIP)
def test_bad_oip_input_is_400_with_the_protocol_body(
    client: TestClient, body: bytes, fragment: str | None
) -> None:
    apply(client, one("cancer/1"))
    r = client.post(f"/v2/models/{DEP}/infer", content=body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert fragment is None or fragment in message, message


def test_hostile_bodies_are_400_never_500(client: TestClient, models: Models) -> None:
    apply(client, one("cancer/1"))
    url = f"/v2/models/{DEP}/infer"
    nan = np.full((1, 30), np.nan).astype("<f8").tobytes()
    header = json.dumps(
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 30],
                     "parameters": {"binary_data_size": len(nan)}}]}
    ).encode()  # fmt: skip
    cases = [
        (header + nan, {"Inference-Header-Content-Length": str(len(header))}, "NaN"),
        (header + nan, {"Inference-Header-Content-Length": "-5"}, "outside"),
        (header + nan, {"Inference-Header-Content-Length": "ten"}, "integer"),
        (header + nan[:10], {"Inference-Header-Content-Length": str(len(header))}, "past the end"),
        (b"[" * 100_000, {}, None),
        (json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [10**12, 30],
                                 "data": [1.0]}]}).encode(), {}, "shape"),
    ]  # fmt: skip
    for body, headers, fragment in cases:
        r = client.post(url, content=body, headers=headers)
        assert r.status_code == 400, (headers, r.text[:200])
        assert fragment is None or fragment in r.json()["error"], r.text[:300]
    bad_mlflow = [b"", b"{}", b'{"instances": []}', b'{"instances": [[1, 2]]}', b'{"a": 1, "b": 2}']
    for body in bad_mlflow:
        r = client.post(f"/deployments/{DEP}/invocations", content=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error_code"] == "INVALID_INPUT"
    r = client.get(url)
    assert r.status_code == 405


def test_a_body_over_the_limit_is_refused_before_it_is_read(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.server.routes import inference

    apply(client, one("cancer/1"))
    monkeypatch.setattr(inference, "MAX_BODY_BYTES", 1_000)
    r = client.post(f"/v2/models/{DEP}/infer", content=b" " * 5_000)
    assert r.status_code == 400
    assert "exceeds 1000 bytes" in r.json()["error"]


def test_a_sticky_deployment_reads_its_key_from_parameters_inputs_or_headers(
    client: TestClient, models: Models
) -> None:
    plan = TrafficPlan(
        DEP,
        1,
        (Backend("cancer", 1, 50), Backend("cancer", 2, 50, Role.CANDIDATE)),
        sticky_key="user",
    )
    apply(client, plan)
    url = f"/v2/models/{DEP}/infer"
    for user in ("ada", "bob", "cy", "dee", "eve", "fay", "gus", "hal"):
        expected = plan.choose_sticky(user).key
        by_param = columns_body(models, 0, 1, parameters={"user": user})
        by_input = matrix_body(models, 0, 1)
        by_input["inputs"].append(
            {"name": "user", "datatype": "BYTES", "shape": [1], "data": [user]}
        )
        for body, headers in (
            (by_param, {}),
            (by_input, {}),
            (matrix_body(models, 0, 1), {"user": user}),
        ):
            r = client.post(url, json=body, headers=headers)
            assert r.status_code == 200, r.text
            assert r.headers["keel-backend"] == expected
        r = client.post(
            f"/deployments/{DEP}/invocations",
            json={"instances": models.X.iloc[:1].to_numpy().tolist()},
            headers={"user": user},
        )
        assert r.headers["keel-backend"] == expected
    lone = {"inputs": [{"name": "user", "datatype": "BYTES", "shape": [1], "data": ["ada"]}]}
    r = client.post(url, json=lone)
    assert r.status_code == 400
    assert "only its 'user' key" in r.json()["error"]


def test_metrics_per_deployment_and_version_at_the_server_metrics(
    client: TestClient, models: Models
) -> None:
    apply(client, one("cancer/1", name="metered"))
    for i in range(3):
        client.post("/v2/models/metered/infer", json=matrix_body(models, i, 1))
    client.post(
        "/v2/models/metered/infer", json=matrix_body(models, 0, 1) | {"outputs": [{"name": "x"}]}
    )
    samples = _samples(client.get("/metrics").text)
    labels = (("deployment", "metered"), ("model", "cancer"), ("version", "1"))
    assert samples["keel_deployment_requests_total", labels] == 4
    assert samples["keel_deployment_rejected_total", labels] == 1
    assert samples["keel_deployment_errors_total", labels] == 0
    assert samples["keel_deployment_request_seconds_count", labels] == 3
    assert samples["keel_deployment_batch_rows_count", labels] >= 1
    assert samples["keel_deployment_queue_depth", labels] == 0
    assert samples["keel_deployment_traffic_weight", (*labels, ("role", "stable"))] == 100


_ORDER = {"deployment": 0, "model": 1, "version": 2, "role": 3}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items(), key=lambda kv: _ORDER.get(kv[0], 9)))
            out[sample.name, labels] = sample.value
    return out


def test_the_lifespan_resumes_stored_deployments_and_closes_the_router(models: Models) -> None:
    from keel.stores import current_stores

    with keel_home(models.home):
        store = current_stores().deployments
        store.create_deployment("resumed", "models:/cancer/2")
        try:
            app = _app(models.home)
            with TestClient(app) as c:
                r = c.post("/v2/models/resumed/infer", json=matrix_body(models, 40, 2))
                assert r.status_code == 200, r.text
                assert r.headers["keel-backend"] == "cancer/2"
                router = app.state.deployment_router
            assert router._closed
            assert router.deployments() == []
        finally:
            store.delete_deployment("resumed")


def test_with_auth_on_every_inference_route_needs_a_viewer_token(models: Models) -> None:
    from keel.governance.auth import auth_store
    from keel.stores import current_stores

    with keel_home(models.home):
        auth = auth_store(current_stores())
        auth.create_user("reader")
        token = auth.create_token("reader").token
        app = _app(models.home, auth=True)
        with TestClient(app) as c:
            apply(c, one("cancer/1"))
            routes = [
                ("GET", "/v2"),
                ("GET", "/v2/health/live"),
                ("GET", "/v2/health/ready"),
                ("GET", f"/v2/models/{DEP}"),
                ("GET", f"/v2/models/{DEP}/ready"),
                ("POST", f"/v2/models/{DEP}/infer"),
                ("POST", f"/deployments/{DEP}/invocations"),
            ]
            refusals = [
                {},
                {"Authorization": "Bearer keel_" + "0" * 12 + "_" + "A" * 43},
                {"Authorization": "Basic YWRhOnNlY3JldA=="},
                {"Authorization": "Bearer " + "x" * 20_000},
            ]
            for method, path in routes:
                for headers in refusals:
                    r = c.request(method, path, json={}, headers=headers)
                    assert r.status_code == 401, (method, path, headers.keys(), r.text)
                    assert r.headers["www-authenticate"] == "Bearer"
            ok = {"Authorization": f"Bearer {token}"}
            r = c.post(f"/v2/models/{DEP}/infer", json=matrix_body(models, 0, 1), headers=ok)
            assert r.status_code == 200, r.text
            r = c.post(
                f"/deployments/{DEP}/invocations",
                json={"instances": models.X.iloc[:1].to_numpy().tolist()},
                headers=ok,
            )
            assert r.status_code == 200, r.text
            assert c.get(f"/v2/models/{DEP}/ready", headers=ok).status_code == 200
            auth.revoke_token(auth.list_tokens(user="reader")[0].token_id)
            r = c.post(f"/v2/models/{DEP}/infer", json=matrix_body(models, 0, 1), headers=ok)
            assert r.status_code == 401


def test_the_lifespan_ticks_changes_made_elsewhere_into_the_router(models: Models) -> None:
    import time

    from keel.stores import current_stores

    with keel_home(models.home):
        store = current_stores().deployments
        store.create_deployment("ticked", "models:/cancer/1")
        try:
            app = _app(models.home)
            with TestClient(app) as c:
                router = app.state.deployment_router
                assert set(router.table("ticked").routes) == {"cancer/1"}
                # a rollout made through the store (another process, the CLI): the
                # controller's tick applies it without any call to this server
                store.start_rollout("ticked", "models:/cancer/2", strategy="blue-green")
                deadline = time.monotonic() + 30
                while router.table("ticked").plan.choose(0.5).key != "cancer/2":
                    assert time.monotonic() < deadline, router.table("ticked").plan
                    time.sleep(0.05)
                r = c.post("/v2/models/ticked/infer", json=matrix_body(models, 0, 1))
                assert r.headers["keel-backend"] == "cancer/2"
        finally:
            store.delete_deployment("ticked")


def test_a_shadow_behind_invocations_records_agreement_and_never_answers(
    client: TestClient, models: Models
) -> None:
    import time

    plan = TrafficPlan(
        "mirrored", 1, (Backend("cancer", 1, 100),), shadow=Backend("cancer", 3, 0, Role.SHADOW)
    )
    apply(client, plan)
    n = 30
    for i in range(n):
        body = {"instances": models.X.iloc[i : i + 1].to_numpy().tolist()}
        r = client.post("/deployments/mirrored/invocations", json=body)
        assert r.headers["keel-backend"] == "cancer/1"
    router = client.app.state.deployment_router  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while router.stats("mirrored", 0)["cancer/3"].extra.get("compared", 0) < n:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rows = models.X.iloc[:n]
    agree = models.predict("cancer/1", rows) == models.predict("cancer/3", rows)
    assert router.stats("mirrored", 0)["cancer/3"].extra["agreement"] == pytest.approx(agree.mean())


def test_text_labels_come_back_as_text_through_both_protocols(models: Models) -> None:
    from sklearn.linear_model import LogisticRegression
    from test_serving_support import register

    X = models.X[["mean radius", "mean texture"]]
    labels = np.where(models.X["mean radius"] > 14, "large", "small")
    with keel_home(models.home):
        key = register(LogisticRegression(max_iter=500).fit(X, labels), X, "sizes")
        model, _, version = key.partition("/")
        with TestClient(_app(models.home)) as c:
            apply(c, TrafficPlan("sizes", 1, (Backend(model, int(version), 100),)))
            rows = X.iloc[:4]
            r = c.post(
                "/deployments/sizes/invocations",
                json={
                    "dataframe_split": {
                        "columns": list(X.columns),
                        "data": rows.to_numpy().tolist(),
                    }
                },
            )
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": labels[:4].tolist()}
            tensor = {
                "name": "x",
                "datatype": "FP64",
                "shape": [4, 2],
                "data": rows.to_numpy().tolist(),
            }
            body = {"inputs": [tensor], "outputs": [{"name": "predict"}]}
            out = c.post("/v2/models/sizes/infer", json=body).json()["outputs"][0]
            assert (out["datatype"], out["data"]) == ("BYTES", labels[:4].tolist())


def test_the_standard_client_works_unchanged_against_a_deployment(models: Models) -> None:
    import asyncio

    import tritonclient.http as triton
    from test_serving_support import live_server

    with keel_home(models.home):
        app = _app(models.home)
        with live_server(app) as (url, loop):
            applied = app.state.deployment_router.apply(one("cancer/2", name="std"))
            asyncio.run_coroutine_threadsafe(applied, loop).result(60)
            client = triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=30)
            try:
                assert client.is_server_live()
                assert client.is_server_ready()
                assert client.is_model_ready("std")
                assert client.get_model_metadata("std")["versions"] == ["2"]
                rows = models.X.to_numpy()[100:110]
                tensor = triton.InferInput("x", list(rows.shape), "FP64")
                tensor.set_data_from_numpy(rows, binary_data=True)
                wanted = [triton.InferRequestedOutput("predict", binary_data=True)]
                result = client.infer("std", [tensor], outputs=wanted)
                np.testing.assert_array_equal(
                    result.as_numpy("predict"), models.predict("cancer/2", models.X.iloc[100:110])
                )
            finally:
                client.close()
                client.close = lambda: None  # type: ignore[method-assign]  # gevent's __del__
