"""The gRPC transport against an in-test InferenceService on Keel's real MicroBatcher.

``AffineService`` serves model ``affine`` (version ``1``): ``y = x @ W + b`` and the row
norms of ``x``, computed with numpy on batches merged by the real batcher, so these tests
check the transport (status codes, loops, limits) apart from any model flavour. The
end-to-end test on a registered scikit-learn model is ``test_grpc_model_service.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_support import TIMEOUT_S, loop_thread, stub_for, triton_client, triton_inputs

from keel.errors import InvalidInput, NotFound
from keel.serving.batching import MicroBatcher
from keel.serving.grpc_server import start_grpc_server
from keel.serving.proto import grpc_predict_v2_pb2 as pb
from keel.serving.protocol import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    Tensor,
    TensorMetadata,
)

tritonclient_grpc = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

W = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
B = np.array([0.25, -1.0])


class AffineService:
    """A real InferenceService: numpy maths behind the real batcher (optionally gated)."""

    def __init__(self, *, max_queue: int = 64, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.entered = threading.Event()
        self.batcher: MicroBatcher[np.ndarray, np.ndarray] = MicroBatcher(
            self._run_batch, len, max_batch_size=64, max_latency_ms=1.0, max_queue=max_queue
        )
        self.fail_with: Exception | None = None

    def _run_batch(self, items: list[np.ndarray]) -> list[np.ndarray]:
        self.entered.set()
        if self.gate is not None and not self.gate.wait(TIMEOUT_S):
            raise TimeoutError("test gate never opened")
        merged = np.concatenate(items)
        out = merged @ W + B
        splits = np.cumsum([len(i) for i in items])[:-1]
        return list(np.split(out, splits))

    def server_live(self) -> bool:
        return True

    def server_ready(self) -> bool:
        return True

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata("keel-test", "9.9", ["binary_tensor_data"])

    def _check(self, name: str, version: str | None) -> None:
        if name != "affine":
            raise NotFound(f"model {name!r} is not served here")
        if version not in (None, "1"):
            raise NotFound(f"version {version!r} of 'affine' is not served here")

    def model_ready(self, name: str, version: str | None) -> bool:
        self._check(name, version)
        return True

    def model_metadata(self, name: str, version: str | None) -> ModelMetadata:
        self._check(name, version)
        return ModelMetadata(
            "affine",
            ["1"],
            "numpy",
            [TensorMetadata("x", "FP64", [-1, 3])],
            [TensorMetadata("y", "FP64", [-1, 2]), TensorMetadata("norm", "FP64", [-1])],
        )

    async def infer(
        self, name: str, version: str | None, request: InferenceRequest
    ) -> InferenceResponse:
        self._check(name, version)
        if self.fail_with is not None:
            raise self.fail_with
        [x] = request.inputs
        if x.data.ndim != 2 or x.data.shape[1] != 3:
            raise InvalidInput(f"input 'x' must have shape [n, 3], not {x.shape}")
        data = np.asarray(x.data, dtype=np.float64)
        y = await self.batcher.submit(data)
        outputs = {
            "y": Tensor("y", "FP64", list(y.shape), y),
            "norm": Tensor("norm", "FP64", [len(data)], np.linalg.norm(data, axis=1)),
        }
        wanted = [o.name for o in request.outputs] or list(outputs)
        unknown = [n for n in wanted if n not in outputs]
        if unknown:
            raise InvalidInput(f"unknown output {unknown[0]!r}; the outputs are y, norm")
        return InferenceResponse("affine", "1", [outputs[n] for n in wanted], id=request.id)


@pytest.fixture
def served() -> Iterator[tuple[AffineService, Any]]:
    service = AffineService()
    server = start_grpc_server(service, "127.0.0.1", 0)
    try:
        yield service, server
    finally:
        server.stop()


def _x(rows: int = 4) -> np.ndarray:
    return np.arange(rows * 3, dtype=np.float64).reshape(rows, 3) / 7.0


def _status(excinfo: pytest.ExceptionInfo[InferenceServerException]) -> str:
    return str(excinfo.value.status())


def test_health_and_metadata_through_tritonclient(served: tuple[AffineService, Any]) -> None:
    _, server = served
    assert server.port > 0
    with triton_client(server.address) as client:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("affine")
        assert client.is_model_ready("affine", "1")
        meta = client.get_server_metadata(as_json=True)
        assert meta == {"name": "keel-test", "version": "9.9", "extensions": ["binary_tensor_data"]}
        model = client.get_model_metadata("affine", as_json=True)
        assert model["versions"] == ["1"]
        assert model["inputs"] == [{"name": "x", "datatype": "FP64", "shape": ["-1", "3"]}]
        assert [o["name"] for o in model["outputs"]] == ["y", "norm"]


def test_raw_infer_through_tritonclient(served: tuple[AffineService, Any]) -> None:
    _, server = served
    x = _x()
    with triton_client(server.address) as client:
        result = client.infer("affine", triton_inputs(x=("FP64", x)), request_id="req-42")
        np.testing.assert_allclose(result.as_numpy("y"), x @ W + B)
        np.testing.assert_allclose(result.as_numpy("norm"), np.linalg.norm(x, axis=1))
        response = result.get_response()
        assert response.id == "req-42"
        assert (response.model_name, response.model_version) == ("affine", "1")
        assert len(response.raw_output_contents) == 2

        only = [tritonclient_grpc.InferRequestedOutput("norm")]
        result = client.infer("affine", triton_inputs(x=("FP64", x)), outputs=only)
        assert [o.name for o in result.get_response().outputs] == ["norm"]
        assert result.as_numpy("y") is None


def test_typed_infer_through_the_stub(served: tuple[AffineService, Any]) -> None:
    _, server = served
    x = _x(3)
    request = pb.ModelInferRequest(model_name="affine", model_version="1", id="t-1")
    tensor = request.inputs.add(name="x", datatype="FP64", shape=[3, 3])
    tensor.contents.fp64_contents.extend(x.ravel().tolist())
    request.outputs.add(name="y")
    with stub_for(server.address) as stub:
        response = stub.ModelInfer(request, timeout=TIMEOUT_S)
    assert response.id == "t-1"
    assert len(response.raw_output_contents) == 0
    [out] = response.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("y", "FP64", [3, 2])
    np.testing.assert_allclose(np.array(out.contents.fp64_contents).reshape(3, 2), x @ W + B)


def test_concurrent_requests_share_batches(served: tuple[AffineService, Any]) -> None:
    service, server = served
    xs = [_x(i + 1) * (i + 1) for i in range(12)]
    with triton_client(server.address) as client:
        results: list[Any] = [None] * len(xs)
        done = threading.Semaphore(0)

        def callback(i: int) -> Any:
            def store(result: Any, error: Any) -> None:
                results[i] = error if error is not None else result
                done.release()

            return store

        for i, x in enumerate(xs):
            client.async_infer("affine", triton_inputs(x=("FP64", x)), callback(i))
        for _ in xs:
            assert done.acquire(timeout=TIMEOUT_S)
    for x, result in zip(xs, results, strict=True):
        np.testing.assert_allclose(result.as_numpy("y"), x @ W + B)
    assert service.batcher.stats.requests == len(xs)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda c: c.infer("affine", triton_inputs(x=("FP64", np.zeros((2, 4))))), "shape [n, 3]"),
        (
            lambda c: c.infer(
                "affine",
                triton_inputs(x=("FP64", _x())),
                outputs=[tritonclient_grpc.InferRequestedOutput("z")],
            ),
            "unknown output 'z'",
        ),
    ],
    ids=["wrong-shape", "unknown-output"],
)
def test_bad_input_is_invalid_argument(
    served: tuple[AffineService, Any], call: Any, words: str
) -> None:
    _, server = served
    with (
        triton_client(server.address) as client,
        pytest.raises(InferenceServerException) as excinfo,
    ):
        call(client)
    assert _status(excinfo) == "StatusCode.INVALID_ARGUMENT"
    assert words in excinfo.value.message()


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (
            lambda r: r.raw_input_contents.append(b"\x00" * 8),
            "2 entries but the request has 1 inputs",
        ),
        (lambda r: setattr(r.inputs[0], "datatype", "FP99"), "unsupported datatype 'FP99'"),
        (lambda r: r.inputs[0].shape.__setitem__(0, -2), "dimensions must be integers >= 0"),
        (lambda r: r.raw_input_contents.__setitem__(0, b"\x00" * 5), "needs 96 bytes"),
    ],
    ids=["raw-count", "datatype", "negative-dim", "raw-size"],
)
def test_malformed_messages_are_invalid_argument(
    served: tuple[AffineService, Any], mutate: Any, words: str
) -> None:
    _, server = served
    request = pb.ModelInferRequest(model_name="affine", raw_input_contents=[_x().tobytes()])
    request.inputs.add(name="x", datatype="FP64", shape=[4, 3])
    mutate(request)
    with stub_for(server.address) as stub, pytest.raises(grpc.RpcError) as excinfo:
        stub.ModelInfer(request, timeout=TIMEOUT_S)
    assert excinfo.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in excinfo.value.details()


def test_unknown_model_or_version_is_not_found(served: tuple[AffineService, Any]) -> None:
    _, server = served
    with triton_client(server.address) as client:
        for call in (
            lambda: client.infer("nope", triton_inputs(x=("FP64", _x()))),
            lambda: client.infer("affine", triton_inputs(x=("FP64", _x())), model_version="7"),
            lambda: client.is_model_ready("nope"),
            lambda: client.get_model_metadata("nope"),
        ):
            with pytest.raises(InferenceServerException) as excinfo:
                call()
            assert _status(excinfo) == "StatusCode.NOT_FOUND"
            assert "is not served here" in excinfo.value.message()


def test_unexpected_errors_are_internal_without_details(served: tuple[AffineService, Any]) -> None:
    service, server = served
    service.fail_with = ZeroDivisionError("secret internals")
    with (
        triton_client(server.address) as client,
        pytest.raises(InferenceServerException) as excinfo,
    ):
        client.infer("affine", triton_inputs(x=("FP64", _x())))
    assert _status(excinfo) == "StatusCode.INTERNAL"
    assert "secret" not in excinfo.value.message()


def test_a_full_batching_queue_is_unavailable() -> None:
    gate = threading.Event()
    service = AffineService(max_queue=1, gate=gate)
    server = start_grpc_server(service, "127.0.0.1", 0)
    request = pb.ModelInferRequest(model_name="affine", raw_input_contents=[_x().tobytes()])
    request.inputs.add(name="x", datatype="FP64", shape=[4, 3])
    try:
        with stub_for(server.address) as stub:
            running = stub.ModelInfer.future(request, timeout=TIMEOUT_S)
            assert service.entered.wait(TIMEOUT_S)  # the worker holds the first request
            queued = stub.ModelInfer.future(request, timeout=TIMEOUT_S)
            for _ in range(2000):
                if service.batcher.queued == 1:
                    break
                threading.Event().wait(0.005)
            assert service.batcher.queued == 1
            with pytest.raises(grpc.RpcError) as excinfo:
                stub.ModelInfer(request, timeout=TIMEOUT_S)
            gate.set()
            assert len(running.result().raw_output_contents) == 2
            assert len(queued.result().raw_output_contents) == 2
    finally:
        gate.set()
        server.stop()
    assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "at capacity" in excinfo.value.details()
    assert ("retry-after", "1") in tuple(excinfo.value.trailing_metadata())
    assert service.batcher.stats.rejected == 1


def test_the_batcher_runs_on_the_service_loop_it_is_given() -> None:
    """Given the caller's loop (as uvicorn's startup does), inference runs on it."""
    service = AffineService()
    with loop_thread() as runner:

        async def start() -> Any:
            loop = asyncio.get_running_loop()
            return start_grpc_server(service, "127.0.0.1", 0, service_loop=loop)

        server = runner.run(start())
        try:
            with triton_client(server.address) as client:
                result = client.infer("affine", triton_inputs(x=("FP64", _x())))
            np.testing.assert_allclose(result.as_numpy("y"), _x() @ W + B)
            assert service.batcher._worker is not None
            assert service.batcher._worker.get_loop() is runner.loop
        finally:
            server.stop()
            runner.run(service.batcher.close())


def test_messages_over_the_limit_are_refused() -> None:
    server = start_grpc_server(AffineService(), "127.0.0.1", 0, max_message_bytes=4096)
    try:
        with triton_client(server.address) as client:
            small = client.infer("affine", triton_inputs(x=("FP64", _x(10))))
            assert small.as_numpy("y").shape == (10, 2)
            with pytest.raises(InferenceServerException) as excinfo:
                client.infer("affine", triton_inputs(x=("FP64", _x(1000))))
    finally:
        server.stop()
    assert _status(excinfo) == "StatusCode.RESOURCE_EXHAUSTED"


def test_a_port_in_use_is_refused_and_stop_is_idempotent(served: tuple[AffineService, Any]) -> None:
    _, server = served
    with pytest.raises(InvalidInput, match=f"cannot serve gRPC on 127.0.0.1:{server.port}"):
        start_grpc_server(AffineService(), "127.0.0.1", server.port)
    with triton_client(server.address) as client:
        assert client.is_server_live()
    server.stop()
    server.stop()
    with stub_for(server.address) as stub, pytest.raises(grpc.RpcError) as excinfo:
        stub.ServerLive(pb.ServerLiveRequest(), timeout=2)
    assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
