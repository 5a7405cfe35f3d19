"""The prediction log behind ``keel serve``: every request recorded, read back with DuckDB.

A real model (``prediction_support``) is served by the ``keel serve`` app on 127.0.0.1
(uvicorn in a thread) with a prediction logger; after the server stops (its shutdown
flushes the log), ``read_predictions`` must return exactly the rows sent: inputs, outputs,
model, version, request ids, status and errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prediction_support import Home, build_home, keel_home, oip_body

from keel.monitoring.prediction_log import PredictionLogger, logger_from_settings
from keel.monitoring.prediction_read import read_predictions
from keel.serving._uvicorn import serving
from keel.serving.rest import create_app
from keel.serving.service import ModelService


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return build_home(tmp_path_factory.mktemp("prediction-log-home"))


@pytest.fixture
def env(home: Home) -> Iterator[Home]:
    with keel_home(home.path):
        yield home


def _name() -> str:
    return f"dep-{uuid.uuid4().hex[:8]}"


def _logger(**options: Any) -> PredictionLogger:
    from keel.stores import current_stores

    options.setdefault("flush_interval", 3600)  # only the shutdown flush, unless a test says
    logger = logger_from_settings(current_stores(), **options)
    assert logger is not None
    return logger


def _service(version: int = 1) -> ModelService:
    service = ModelService.from_uri(f"models:/cancer/{version}")
    service.load()
    return service


def test_every_request_is_recorded_and_read_back(env: Home) -> None:
    dep, X = _name(), env.X
    model = env.models[1]
    with serving(create_app(_service(), prediction_log=_logger(), deployment=dep)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            one = client.post("/v2/models/cancer/infer", json=oip_body(X, 0, 1))
            hundred = client.post(
                "/v2/models/cancer/infer", json=oip_body(X, 10, 100, request_id="req-100")
            )
            frame = X.iloc[200:203]
            invocation = client.post(
                "/invocations",
                json={
                    "dataframe_split": {"columns": list(X.columns), "data": frame.values.tolist()}
                },
                headers={"Keel-Request-Id": "inv-1"},
            )
            bad = oip_body(X, 0, 2)
            bad["inputs"] = bad["inputs"][1:]  # column f0 missing
            refused = client.post("/v2/models/cancer/infer", json=bad)
            unknown = client.post("/v2/models/other/infer", json=oip_body(X, 0, 1))
    assert [r.status_code for r in (one, hundred, invocation, refused, unknown)] == [
        200,
        200,
        200,
        400,
        404,
    ]
    rid = one.headers["Keel-Request-Id"]
    assert one.json()["id"] == rid
    assert len(rid) == 32
    assert hundred.headers["Keel-Request-Id"] == "req-100" == hundred.json()["id"]
    assert invocation.headers["Keel-Request-Id"] == "inv-1"
    refused_id = refused.headers["Keel-Request-Id"]

    df = read_predictions(dep, with_feedback=False)
    assert len(df) == 1 + 100 + 3 + 1  # the 404 was not this model's request
    assert set(df["request_id"]) == {rid, "req-100", "inv-1", refused_id}
    assert (df["deployment"] == dep).all()
    assert (df["model"] == "cancer").all()
    assert (df["version"] == "1").all()

    big = df[df["request_id"] == "req-100"].sort_values("row")
    assert big["row"].tolist() == list(range(100))
    inputs = big[[f"input.{c}" for c in X.columns]].to_numpy()
    np.testing.assert_array_equal(inputs, X.iloc[10:110].to_numpy())
    np.testing.assert_array_equal(big["output.predict"], model.predict(X.iloc[10:110]))
    proba = model.predict_proba(X.iloc[10:110])
    np.testing.assert_allclose(big["output.predict_proba.1"], proba[:, 1])
    assert (big["status"] == 200).all()
    assert big["error"].isna().all()
    assert big["sampled"].all()
    assert big["latency_ms"].nunique() == 1
    assert (big["latency_ms"] > 0).all()
    assert big["time_ms"].nunique() == 1

    inv = df[df["request_id"] == "inv-1"].sort_values("row")
    np.testing.assert_array_equal(inv["output.predict"], model.predict(frame))
    assert inv["output.predict_proba.1"].isna().all()  # /invocations asks predict only
    np.testing.assert_array_equal(inv[[f"input.{c}" for c in X.columns]], frame.to_numpy())

    failed = df[df["request_id"] == refused_id]
    assert len(failed) == 1
    assert failed["row"].iloc[0] == 0
    assert failed["status"].iloc[0] == 400
    assert "f0" in failed["error"].iloc[0]
    assert failed["output.predict"].isna().all()
    assert not failed["sampled"].iloc[0]


def test_sample_rate_zero_records_no_inputs(env: Home) -> None:
    dep, X = _name(), env.X
    with serving(
        create_app(_service(), prediction_log=_logger(sample_rate=0.0), deployment=dep)
    ) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for start in range(5):
                answer = client.post("/v2/models/cancer/infer", json=oip_body(X, start, 4))
                assert answer.status_code == 200
    df = read_predictions(dep)
    assert len(df) == 20
    assert not df["sampled"].any()
    assert not [c for c in df.columns if c.startswith("input.")]
    np.testing.assert_array_equal(
        df.sort_values(["time_ms", "request_id", "row"])["output.predict"].notna(), True
    )


def test_half_sampled_requests_keep_inputs_per_request(env: Home) -> None:
    logger = _logger(sample_rate=0.5)
    X = env.X.to_numpy()
    dep = _name()
    for i in range(40):
        logger.record(
            deployment=dep,
            model="m",
            version="1",
            request_id=f"r{i}",
            time_ms=1_800_000_000_000 + i,
            latency_ms=1.0,
            status=200,
            rows=2,
            inputs=X[i : i + 2],
            input_names=[f"f{j}" for j in range(X.shape[1])],
            outputs={"predict": np.array([0, 1])},
        )
    logger.close()
    df = read_predictions(dep)
    per_request = df.groupby("request_id")["sampled"].agg(["min", "max"])
    assert (per_request["min"] == per_request["max"]).all()  # all rows of a request alike
    assert 0 < df["sampled"].sum() < len(df)
    assert df.loc[~df["sampled"], "input.f0"].isna().all()
    assert df.loc[df["sampled"], "input.f0"].notna().all()


def test_metrics_export_the_dropped_counter(env: Home) -> None:
    logger = _logger(max_records=2)
    with serving(create_app(_service(), prediction_log=logger, deployment=_name())) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for start in range(4):
                client.post("/v2/models/cancer/infer", json=oip_body(env.X, start, 1))
            text = client.get("/metrics").text
    assert "keel_prediction_log_dropped_total 2.0" in text
    assert "keel_prediction_log_recorded_total 2.0" in text
    assert logger.counters()["written_rows"] == 2


def test_grpc_model_infer_is_recorded(env: Home) -> None:
    grpc_client = pytest.importorskip("tritonclient.grpc")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dep, X = _name(), env.X
    app = create_app(
        _service(), prediction_log=_logger(), deployment=dep, grpc_address=("127.0.0.1", port)
    )
    with serving(app):
        client = grpc_client.InferenceServerClient(f"127.0.0.1:{port}")
        try:
            inputs = []
            for c in X.columns:
                tensor = grpc_client.InferInput(c, [3], "FP64")
                tensor.set_data_from_numpy(X[c].to_numpy()[:3])
                inputs.append(tensor)
            result = client.infer("cancer", inputs, request_id="grpc-1")
            assert result.get_response().id == "grpc-1"
        finally:
            client.close()
    df = read_predictions(dep)
    assert df["request_id"].tolist() == ["grpc-1"] * 3
    np.testing.assert_array_equal(df["input.f3"], X["f3"].to_numpy()[:3])
    np.testing.assert_array_equal(df["output.predict"], env.models[1].predict(X.iloc[:3]))


def test_logging_off_writes_nothing(env: Home, tmp_path: Path) -> None:
    from keel.stores import current_stores

    assert logger_from_settings(current_stores(), enabled=False) is None
    with keel_home(env.path, KEEL_PREDICTION_LOG="false"):
        assert logger_from_settings(current_stores()) is None


def test_feedback_for_a_model_keel_serve_logged(env: Home) -> None:
    import keel

    with serving(create_app(_service(), prediction_log=_logger())) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            answer = client.post("/v2/models/cancer/infer", json=oip_body(env.X, 0, 2))
    rid = answer.headers["Keel-Request-Id"]
    assert keel.log_feedback("cancer", [rid, rid], [1, 0], row=[0, 1]) == 2
    df = keel.read_predictions("cancer")
    mine = df[df["request_id"] == rid].sort_values("row")
    assert mine["target"].tolist() == [1.0, 0.0]
    with pytest.raises(keel.NotFound, match="no predictions are logged"):
        keel.log_feedback("never-served", rid, 1)


def test_concurrent_requests_are_all_recorded_once(env: Home) -> None:
    from concurrent.futures import ThreadPoolExecutor

    dep, X = _name(), env.X
    logger = _logger(flush_rows=50)  # several flushes while the load runs

    def client_run(url: str, k: int) -> list[str]:
        with httpx.Client(base_url=url, timeout=30) as client:
            return [
                client.post(
                    "/v2/models/cancer/infer", json=oip_body(X, (k * 20 + i) % 500, 3)
                ).headers["Keel-Request-Id"]
                for i in range(20)
            ]

    with serving(create_app(_service(), prediction_log=logger, deployment=dep)) as url:
        with ThreadPoolExecutor(8) as pool:
            ids = [
                rid for batch in pool.map(lambda k: client_run(url, k), range(8)) for rid in batch
            ]
    assert len(set(ids)) == 160
    df = read_predictions(dep)
    assert len(df) == 480
    assert sorted(df["request_id"].unique()) == sorted(ids)
    assert not df.duplicated(["request_id", "row"]).any()
    assert logger.counters()["segments"] > 1


def test_a_refused_grpc_request_is_recorded(env: Home) -> None:
    grpc_client = pytest.importorskip("tritonclient.grpc")
    import socket

    from tritonclient.utils import InferenceServerException

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dep = _name()
    app = create_app(
        _service(), prediction_log=_logger(), deployment=dep, grpc_address=("127.0.0.1", port)
    )
    with serving(app):
        client = grpc_client.InferenceServerClient(f"127.0.0.1:{port}")
        try:
            tensor = grpc_client.InferInput("f0", [2], "FP64")  # the other columns missing
            tensor.set_data_from_numpy(env.X["f0"].to_numpy()[:2])
            with pytest.raises(InferenceServerException):
                client.infer("cancer", [tensor], request_id="grpc-bad")
        finally:
            client.close()
    df = read_predictions(dep)
    assert df["request_id"].tolist() == ["grpc-bad"]
    assert df["status"].tolist() == [400]
    assert "f1" in df["error"].iloc[0]


def test_a_request_is_logged_after_its_response_is_sent(env: Home) -> None:
    # A logger that holds the event loop in submit until the client has its answer: were
    # the request logged before its response was sent, the client would time out.
    import threading

    from keel.stores import current_stores

    answered = threading.Event()

    class HeldLogger(PredictionLogger):
        waited: bool | None = None

        def submit(self, *fields: Any) -> None:
            self.waited = answered.wait(10)
            super().submit(*fields)

    dep = _name()
    settings_logger = logger_from_settings(current_stores())
    assert settings_logger is not None
    logger = HeldLogger(settings_logger.root, flush_interval=3600)
    with serving(create_app(_service(), prediction_log=logger, deployment=dep)) as url:
        with httpx.Client(base_url=url, timeout=5) as client:
            answer = client.post("/v2/models/cancer/infer", json=oip_body(env.X, 0, 1))
            answered.set()
    assert answer.status_code == 200
    assert logger.waited is True
    logged = read_predictions(dep)
    assert logged["request_id"].tolist() == [answer.headers["Keel-Request-Id"]]
