"""gRPC end to end: tritonclient against a registered scikit-learn model (breast cancer).

The service is Keel's real ``ModelService`` (runtime, signature checks, MicroBatcher), run
on its own event loop in a thread the way uvicorn's loop runs beside the gRPC server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_support import TIMEOUT_S, LoopThread, loop_thread, stub_for, triton_client, triton_inputs

from keel.serving.grpc_server import start_grpc_server
from keel.serving.proto import grpc_predict_v2_pb2 as pb
from keel.serving.service import ModelService

tritonclient_grpc = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402


@pytest.fixture
def runner() -> Iterator[LoopThread]:
    with loop_thread() as loop:
        yield loop


def _serve(runner: LoopThread, service: ModelService) -> Any:
    async def start() -> Any:  # on the service's loop, as the REST app's startup does
        return start_grpc_server(service, "127.0.0.1", 0, service_loop=asyncio.get_running_loop())

    return runner.run(start())


@pytest.fixture
def served(classifier: Any, runner: LoopThread) -> Iterator[tuple[ModelService, Any]]:
    service = ModelService.from_uri(classifier.uri)
    service.load()
    server = _serve(runner, service)
    try:
        yield service, server
    finally:
        runner.run(server.aclose())
        runner.run(service.close())


def test_tritonclient_against_a_registered_model(
    served: tuple[ModelService, Any], classifier: Any
) -> None:
    _, server = served
    X = classifier.X.to_numpy(dtype=np.float64)[:40]
    with triton_client(server.address) as client:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("cancer")
        assert client.is_model_ready("cancer", "1")
        assert client.get_server_metadata(as_json=True)["name"] == "keel"
        meta = client.get_model_metadata("cancer", as_json=True)
        assert meta["versions"] == ["1"]
        assert [i["name"] for i in meta["inputs"]] == list(classifier.X.columns)
        assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]

        result = client.infer("cancer", triton_inputs(features=("FP64", X)), request_id="bc-1")
        np.testing.assert_array_equal(
            result.as_numpy("predict"), classifier.estimator.predict(classifier.X[:40])
        )
        np.testing.assert_allclose(
            result.as_numpy("predict_proba"), classifier.estimator.predict_proba(classifier.X[:40])
        )
        assert result.get_response().id == "bc-1"

        only = [tritonclient_grpc.InferRequestedOutput("predict_proba")]
        result = client.infer("cancer", triton_inputs(features=("FP64", X[:3])), outputs=only)
        assert [o.name for o in result.get_response().outputs] == ["predict_proba"]


def test_typed_contents_against_a_registered_model(
    served: tuple[ModelService, Any], classifier: Any
) -> None:
    _, server = served
    X = classifier.X.to_numpy(dtype=np.float64)[:5]
    request = pb.ModelInferRequest(model_name="cancer", id="typed")
    tensor = request.inputs.add(name="features", datatype="FP64", shape=list(X.shape))
    tensor.contents.fp64_contents.extend(X.ravel().tolist())
    request.outputs.add(name="predict")
    with stub_for(server.address) as stub:
        response = stub.ModelInfer(request, timeout=TIMEOUT_S)
    assert response.id == "typed"
    assert len(response.raw_output_contents) == 0
    [out] = response.outputs
    assert (
        list(out.contents.int64_contents) == classifier.estimator.predict(classifier.X[:5]).tolist()
    )


def test_bad_input_and_unknown_model(served: tuple[ModelService, Any]) -> None:
    _, server = served
    with triton_client(server.address) as client:
        with pytest.raises(InferenceServerException) as excinfo:
            client.infer("cancer", triton_inputs(features=("FP64", np.zeros((2, 7)))))
        assert str(excinfo.value.status()) == "StatusCode.INVALID_ARGUMENT"
        assert excinfo.value.message()
        for call in (
            lambda: client.infer("churn", triton_inputs(features=("FP64", np.zeros((1, 30))))),
            lambda: client.get_model_metadata("cancer", "9"),
            lambda: client.is_model_ready("churn"),
        ):
            with pytest.raises(InferenceServerException) as excinfo:
                call()
            assert str(excinfo.value.status()) == "StatusCode.NOT_FOUND"
            assert "not served here" in excinfo.value.message()


def test_a_full_queue_of_the_real_batcher_is_unavailable(
    classifier: Any, runner: LoopThread
) -> None:
    service = ModelService.from_uri(classifier.uri, max_queue=1)
    service.load()
    runtime = service.runtime
    assert runtime is not None
    gate, entered = threading.Event(), threading.Event()
    run = runtime.run

    def gated_run(batch: Any) -> Any:  # holds the batcher's worker busy until the test says
        entered.set()
        gate.wait(TIMEOUT_S)
        return run(batch)

    runtime.run = gated_run  # type: ignore[method-assign]
    server = _serve(runner, service)
    X = classifier.X.to_numpy(dtype=np.float64)[:2]
    request = pb.ModelInferRequest(model_name="cancer", raw_input_contents=[X.tobytes()])
    request.inputs.add(name="features", datatype="FP64", shape=list(X.shape))
    try:
        with stub_for(server.address) as stub:
            first = stub.ModelInfer.future(request, timeout=TIMEOUT_S)
            assert entered.wait(TIMEOUT_S)
            second = stub.ModelInfer.future(request, timeout=TIMEOUT_S)
            for _ in range(2000):
                if service.batcher.queued == 1:
                    break
                threading.Event().wait(0.005)
            assert service.batcher.queued == 1
            with pytest.raises(grpc.RpcError) as excinfo:
                stub.ModelInfer(request, timeout=TIMEOUT_S)
            gate.set()
            assert first.result().outputs[0].name == "predict"
            assert second.result().outputs[0].name == "predict"
    finally:
        gate.set()
        runner.run(server.aclose())
        runner.run(service.close())
    assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "capacity" in excinfo.value.details()
    assert service.batcher.stats.rejected == 1


def test_rest_and_grpc_in_one_app_share_the_batcher(classifier: Any) -> None:
    """``create_app(grpc_address=...)`` starts gRPC in the app's startup, on uvicorn's loop."""
    import httpx
    from tests.live_server import free_port

    from keel.serving._uvicorn import serving
    from keel.serving.rest import create_app

    grpc_port = free_port()  # the app binds it at startup: chosen outside the ephemeral range
    service = ModelService.from_uri(classifier.uri)
    service.load()
    X = classifier.X.to_numpy(dtype=np.float64)[:3]
    expected = classifier.estimator.predict(classifier.X[:3]).tolist()
    body = {
        "inputs": [
            {"name": "features", "datatype": "FP64", "shape": [3, 30], "data": X.ravel().tolist()}
        ]
    }
    with serving(create_app(service, grpc_address=("127.0.0.1", grpc_port))) as url:
        rest = httpx.post(f"{url}/v2/models/cancer/infer", json=body, timeout=TIMEOUT_S)
        assert rest.status_code == 200
        with triton_client(f"127.0.0.1:{grpc_port}") as client:
            result = client.infer("cancer", triton_inputs(features=("FP64", X)))
        assert result.as_numpy("predict").tolist() == expected
        predict = next(o for o in rest.json()["outputs"] if o["name"] == "predict")
        assert predict["data"] == expected
        assert service.batcher.stats.requests == 2
