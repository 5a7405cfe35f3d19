"""A model with a tensor signature (fitted on a numpy array) behind the REST server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from oip_support import error_of, keel_home, triton_client

from keel.serving import _uvicorn
from keel.serving._uvicorn import NoDelayHTTPProtocol, serving, set_nodelay
from keel.serving.rest import create_app
from keel.serving.service import ModelService


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object, np.ndarray]]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    import keel

    X, y = load_diabetes(return_X_y=True)
    model = Ridge(alpha=0.5).fit(X, y)
    with keel_home(tmp_path_factory.mktemp("diabetes-home")):
        with keel.start_run(experiment="serving") as run:
            run.log_model(model, "model", input_example=X[:5])
        keel.register_model(f"runs:/{run.run_id}/model", "diabetes")
        service = ModelService.from_uri("models:/diabetes/latest")
        service.load()
    with serving(create_app(service)) as url:
        yield url, model, X


def test_metadata_names_one_input_tensor(diabetes: tuple) -> None:
    url, _, _ = diabetes
    with triton_client(url) as client:
        meta = client.get_model_metadata("diabetes")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 10]}]
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]


@pytest.mark.parametrize(("datatype", "binary"), [("FP64", True), ("FP32", False)])
def test_infer_the_tensor(diabetes: tuple, datatype: str, binary: bool) -> None:
    url, model, X = diabetes
    rows = X[:6].astype(datatype.replace("FP", "float"))
    tensor = triton.InferInput("input", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=binary)
    with triton_client(url) as client:
        result = client.infer("diabetes", [tensor])
    np.testing.assert_allclose(result.as_numpy("predict"), model.predict(rows.astype(float)))


def test_the_wrong_tensor_name_or_width_is_400(diabetes: tuple) -> None:
    url, _, X = diabetes
    infer = f"{url}/v2/models/diabetes/infer"
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 10], "data": X[0].tolist()}]}
    response = httpx.post(infer, json=body)
    assert response.status_code == 400
    assert "unknown input tensor 'x'" in error_of(response)
    body = {
        "inputs": [{"name": "input", "datatype": "FP64", "shape": [2, 5], "data": X[0].tolist()}]
    }
    response = httpx.post(infer, json=body)
    assert response.status_code == 400
    assert "the model expects [-1, 10]" in error_of(response)


def test_served_connections_have_nagle_off() -> None:
    class Transport:
        def __init__(self, sock: socket.socket) -> None:
            self.sock = sock

        def get_extra_info(self, name: str) -> object:
            return self.sock if name == "socket" else None

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        set_nodelay(Transport(sock))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    assert _uvicorn.config(object(), host="127.0.0.1", port=0).http is NoDelayHTTPProtocol


def test_a_run_model_uri_serves_an_unversioned_model(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    import keel

    X, y = load_diabetes(return_X_y=True)
    model = Ridge().fit(X, y)
    with keel_home(tmp_path):
        with keel.start_run(experiment="serving") as run:
            run.log_model(model, "ridge", input_example=X[:3])
        service = ModelService.from_uri(f"runs:/{run.run_id}/ridge")
        service.load()
    with serving(create_app(service)) as url:
        meta = httpx.get(f"{url}/v2/models/ridge").json()
        body = {
            "inputs": [
                {"name": "input", "datatype": "FP64", "shape": [1, 10], "data": X[0].tolist()}
            ]
        }
        doc = httpx.post(f"{url}/v2/models/ridge/infer", json=body).json()
    assert meta["versions"] == []
    assert "model_version" not in doc
    np.testing.assert_allclose(doc["outputs"][0]["data"], model.predict(X[:1]))
