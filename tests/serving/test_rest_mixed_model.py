"""A model with string, integer and boolean columns: BYTES, INT64 and BOOL tensors map to
the signature's columns, and mixed binary/JSON outputs come back in one response."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from oip_support import error_of, keel_home, triton_client

from keel.serving._uvicorn import serving
from keel.serving.rest import create_app
from keel.serving.service import ModelService


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object, pd.DataFrame]]:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import keel

    rng = np.random.default_rng(3)
    n = 200
    frame = pd.DataFrame(
        {
            "plan": rng.choice(["basic", "pro", "team"], n).astype(object),
            "seats": rng.integers(1, 50, n),
            "annual": rng.random(n) > 0.5,
        }
    )
    y = (frame["plan"] == "pro") ^ frame["annual"]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["plan"]), remainder="passthrough"
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=500)).fit(frame, y)
    with keel_home(tmp_path_factory.mktemp("mixed-home")):
        with keel.start_run(experiment="serving") as run:
            run.log_model(model, "model", input_example=frame.head(5))
        keel.register_model(f"runs:/{run.run_id}/model", "plans")
        service = ModelService.from_uri("models:/plans/1")
        service.load()
    with serving(create_app(service)) as url:
        yield url, model, frame


def test_metadata_maps_column_dtypes_to_datatypes(mixed: tuple) -> None:
    url, _, _ = mixed
    with triton_client(url) as client:
        meta = client.get_model_metadata("plans")
    assert meta["inputs"] == [
        {"name": "plan", "datatype": "BYTES", "shape": [-1]},
        {"name": "seats", "datatype": "INT64", "shape": [-1]},
        {"name": "annual", "datatype": "BOOL", "shape": [-1]},
    ]


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_int_and_bool_column_tensors(mixed: tuple, binary: bool) -> None:
    url, model, frame = mixed
    rows = frame.iloc[20:28]
    tensors = []
    for name, datatype, values in (
        ("plan", "BYTES", np.array([p.encode() for p in rows["plan"]], dtype=object)),
        ("seats", "INT64", rows["seats"].to_numpy()),
        ("annual", "BOOL", rows["annual"].to_numpy()),
    ):
        tensor = triton.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=True),
        triton.InferRequestedOutput("predict_proba", binary_data=False),
    ]
    with triton_client(url) as client:
        result = client.infer("plans", tensors, outputs=outputs)
    response = result.get_response()["outputs"]
    assert "binary_data_size" in response[0]["parameters"]
    assert "data" in response[1]
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(rows))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows))


def test_binary_data_output_with_a_json_exception(mixed: tuple) -> None:
    url, model, frame = mixed
    rows = frame.iloc[:2]
    body = {
        "parameters": {"binary_data_output": True},
        "inputs": [
            {"name": "plan", "datatype": "BYTES", "shape": [2], "data": rows["plan"].tolist()},
            {"name": "seats", "datatype": "INT64", "shape": [2], "data": rows["seats"].tolist()},
            {"name": "annual", "datatype": "BOOL", "shape": [2], "data": rows["annual"].tolist()},
        ],
        "outputs": [
            {"name": "predict_proba"},
            {"name": "predict", "parameters": {"binary_data": False}},
        ],
    }
    response = httpx.post(f"{url}/v2/models/plans/infer", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:length])
    proba, predict = header["outputs"]
    assert proba["parameters"]["binary_data_size"] == 2 * 2 * 8
    assert predict["data"] == model.predict(rows).tolist()
    raw = np.frombuffer(response.content[length:], dtype="<f8").reshape(2, 2)
    np.testing.assert_allclose(raw, model.predict_proba(rows))


def test_a_number_for_a_string_column_is_400(mixed: tuple) -> None:
    url = mixed[0]
    body = {
        "inputs": [
            {"name": "plan", "datatype": "INT64", "shape": [1], "data": [3]},
            {"name": "seats", "datatype": "INT64", "shape": [1], "data": [3]},
            {"name": "annual", "datatype": "BOOL", "shape": [1], "data": [True]},
        ]
    }
    response = httpx.post(f"{url}/v2/models/plans/infer", json=body)
    assert response.status_code == 400
    assert "expected BYTES (string), got INT64" in error_of(response)
