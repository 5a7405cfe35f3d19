"""The REST model server with the standard client (tritonclient.http) and raw HTTP.

One breast-cancer pipeline is registered and served for the module; predictions are
checked against the same pipeline predicting in-process.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from oip_support import Churn, error_of, keel_home, register_churn, triton_client
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from keel.serving._uvicorn import serving
from keel.serving.rest import create_app
from keel.serving.service import ModelService


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Churn:
    with keel_home(tmp_path_factory.mktemp("churn-home")) as home:
        return register_churn(home)


@pytest.fixture(scope="module")
def server(churn: Churn) -> Iterator[tuple[str, ModelService]]:
    with keel_home(churn.home):
        service = ModelService.from_uri(churn.uri)
        service.load()
    with serving(create_app(service)) as url:
        yield url, service


@pytest.fixture
def url(server: tuple[str, ModelService]) -> str:
    return server[0]


@pytest.fixture
def client(url: str) -> Iterator[Any]:
    with triton_client(url) as c:
        yield c


def _rows(churn: Churn, start: int, n: int) -> np.ndarray:
    return churn.X.to_numpy()[start : start + n]


def _predict(churn: Churn, rows: np.ndarray) -> np.ndarray:
    return churn.model.predict(pd.DataFrame(rows, columns=churn.X.columns))


def _proba(churn: Churn, rows: np.ndarray) -> np.ndarray:
    return churn.model.predict_proba(pd.DataFrame(rows, columns=churn.X.columns))


def test_health_and_server_metadata(client: Any, url: str) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("churn")
    assert client.is_model_ready("churn", "1")
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/churn/ready"):
        response = httpx.get(f"{url}{path}")
        assert (response.status_code, response.content) == (200, b"")  # the spec: empty body
    meta = client.get_server_metadata()
    assert meta["name"] == "keel"
    assert "binary_tensor_data" in meta["extensions"]


def test_model_metadata_comes_from_the_signature(client: Any, churn: Churn) -> None:
    for version in ("", "1"):
        meta = client.get_model_metadata("churn", version)
        assert meta["name"] == "churn"
        assert meta["versions"] == ["1"]
        assert meta["platform"] == "keel_sklearn"
        assert [i["name"] for i in meta["inputs"]] == list(churn.X.columns)
        assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
        assert all(i["shape"] == [-1] for i in meta["inputs"])
        outputs = {o["name"]: o for o in meta["outputs"]}
        assert outputs["predict"]["datatype"] == "INT64"
        assert outputs["predict"]["shape"] == [-1]
        assert outputs["predict_proba"] == {
            "name": "predict_proba",
            "datatype": "FP64",
            "shape": [-1, 2],
        }


@pytest.mark.parametrize("binary", [True, False])
def test_infer_a_2d_tensor_with_requested_outputs(client: Any, churn: Churn, binary: bool) -> None:
    rows = _rows(churn, 40, 7)
    tensor = triton.InferInput("features", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("predict_proba", binary_data=binary),
        triton.InferRequestedOutput("predict", binary_data=binary),
    ]
    result = client.infer("churn", [tensor], outputs=outputs, request_id=f"req-{binary}")
    response = result.get_response()
    assert response["id"] == f"req-{binary}"
    assert response["model_name"] == "churn"
    assert response["model_version"] == "1"
    assert [o["name"] for o in response["outputs"]] == ["predict_proba", "predict"]
    np.testing.assert_array_equal(result.as_numpy("predict"), _predict(churn, rows))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), _proba(churn, rows))
    sent_binary = all("binary_data_size" in o.get("parameters", {}) for o in response["outputs"])
    assert sent_binary is binary


def test_one_requested_output_returns_only_that_one(client: Any, churn: Churn) -> None:
    rows = _rows(churn, 0, 3)
    tensor = triton.InferInput("x", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    result = client.infer("churn", [tensor], outputs=[triton.InferRequestedOutput("predict")])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["predict"]
    assert result.as_numpy("predict_proba") is None


def test_no_requested_outputs_returns_all_in_binary(client: Any, churn: Churn) -> None:
    rows = _rows(churn, 100, 4)
    tensor = triton.InferInput("x", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    result = client.infer("churn", [tensor])  # tritonclient then asks binary_data_output
    names = [o["name"] for o in result.get_response()["outputs"]]
    assert names == ["predict", "predict_proba"]
    np.testing.assert_array_equal(result.as_numpy("predict"), _predict(churn, rows))


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_one_tensor_per_column(client: Any, churn: Churn, datatype: str) -> None:
    frame = churn.X.iloc[200:209]
    tensors = []
    for column in frame.columns:
        values = frame[column].to_numpy().astype(datatype.replace("FP", "float"))
        tensor = triton.InferInput(column, [len(values)], datatype)
        tensor.set_data_from_numpy(values, binary_data=datatype == "FP32")
        tensors.append(tensor)
    result = client.infer("churn", tensors, outputs=[triton.InferRequestedOutput("predict")])
    np.testing.assert_array_equal(result.as_numpy("predict"), churn.model.predict(frame))


def test_column_tensors_of_shape_n_by_1(url: str, churn: Churn) -> None:
    frame = churn.X.iloc[10:12]
    inputs = [
        {"name": c, "datatype": "FP64", "shape": [2, 1], "data": frame[c].tolist()}
        for c in frame.columns
    ]
    response = httpx.post(f"{url}/v2/models/churn/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    predict = {o["name"]: o for o in response.json()["outputs"]}["predict"]
    assert predict["data"] == churn.model.predict(frame).tolist()


def test_json_request_without_binary_gets_json(url: str, churn: Churn) -> None:
    rows = _rows(churn, 5, 2)
    body = {
        "id": "plain",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 30], "data": rows.tolist()}],
    }
    response = httpx.post(f"{url}/v2/models/churn/versions/1/infer", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in response.headers
    doc = response.json()
    assert doc["id"] == "plain"
    proba = {o["name"]: o for o in doc["outputs"]}["predict_proba"]
    assert proba["shape"] == [2, 2]
    np.testing.assert_allclose(np.array(proba["data"]).reshape(2, 2), _proba(churn, rows))


@pytest.mark.parametrize("form", ["dataframe_split", "dataframe_records", "instances", "inputs"])
def test_invocations_accepts_mlflow_formats(url: str, churn: Churn, form: str) -> None:
    frame = churn.X.iloc[300:306]
    body = {
        "dataframe_split": {"dataframe_split": frame.to_dict(orient="split")},
        "dataframe_records": {"dataframe_records": frame.to_dict(orient="records")},
        "instances": {"instances": frame.to_numpy().tolist()},
        "inputs": {"inputs": frame.to_dict(orient="list")},
    }[form]
    response = httpx.post(f"{url}/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": churn.model.predict(frame).tolist()}


def test_invocations_accepts_csv(url: str, churn: Churn) -> None:
    frame = churn.X.iloc[:4]
    response = httpx.post(
        f"{url}/invocations",
        content=frame.to_csv(index=False),
        headers={"content-type": "text/csv"},
    )
    assert response.json() == {"predictions": churn.model.predict(frame).tolist()}


def test_invocations_errors_use_keels_shape(url: str) -> None:
    response = httpx.post(f"{url}/invocations", json={"rows": [[1.0]]})
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_INPUT"
    assert "dataframe_split" in response.json()["message"]


def test_unknown_model_or_version_is_404(url: str, client: Any) -> None:
    for path in (
        "/v2/models/nope",
        "/v2/models/nope/ready",
        "/v2/models/churn/versions/7",
        "/v2/models/churn/versions/7/ready",
        "/v2/no-such-route",
    ):
        response = httpx.get(f"{url}{path}")
        assert response.status_code == 404, path
        error_of(response)
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]}
    for path in ("/v2/models/nope/infer", "/v2/models/churn/versions/2/infer"):
        response = httpx.post(f"{url}{path}", json=body)
        assert response.status_code == 404
        assert "not served" in error_of(response)
    with pytest.raises(InferenceServerException, match="not served"):
        client.get_model_metadata("nope")


def test_metrics_count_requests_and_batches(url: str, client: Any, churn: Churn) -> None:
    rows = _rows(churn, 0, 1)
    tensor = triton.InferInput("x", [1, 30], "FP64")
    tensor.set_data_from_numpy(rows)
    client.infer("churn", [tensor])
    text = httpx.get(f"{url}/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("keel_serving_requests_total", (("code", "200"), ("route", "infer")))] >= 1
    assert samples[("keel_serving_batches_total", ())] >= 1
    assert samples[("keel_serving_ready", ())] == 1
