"""Bad input to the REST model server: 400 with the protocol's {"error"} body, never a 500.

Also: a model that fails to load or warm never reports ready and never reaches predict.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from oip_support import (
    Churn,
    Gated,
    error_of,
    keel_home,
    loaded,
    register_churn,
    triton_client,
)

from keel.errors import IntegrityError, KeelError
from keel.serving._uvicorn import serving
from keel.serving.rest import create_app
from keel.serving.runtime import ModelRuntime
from keel.serving.service import ModelService


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Churn:
    with keel_home(tmp_path_factory.mktemp("bad-input-home")) as home:
        return register_churn(home)


@pytest.fixture(scope="module")
def url(churn: Churn) -> Iterator[str]:
    with keel_home(churn.home):
        service = ModelService.from_uri("models:/churn/1")
        service.load()
    with serving(create_app(service)) as base:
        yield f"{base}/v2/models/churn/infer"


def _columns(churn: Churn, n: int = 2) -> list[dict]:
    frame = churn.X.iloc[:n]
    return [
        {"name": c, "datatype": "FP64", "shape": [n], "data": frame[c].tolist()}
        for c in frame.columns
    ]


def _post_json(url: str, doc: object) -> httpx.Response:
    return httpx.post(url, content=orjson.dumps(doc), headers={"content-type": "application/json"})


def _assert_400(response: httpx.Response, match: str) -> None:
    assert response.status_code == 400, response.text
    assert match in error_of(response)


def test_a_good_request_passes(url: str, churn: Churn) -> None:
    response = _post_json(url, {"inputs": _columns(churn)})
    assert response.status_code == 200


def test_wrong_shape(url: str, churn: Churn) -> None:
    rows = churn.X.to_numpy()[:2]
    doc = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 29], "data": rows.tolist()}]}
    _assert_400(_post_json(url, doc), "holds 58 elements but data has 60")
    doc["inputs"][0]["shape"] = [3, 20]
    doc["inputs"][0]["data"] = rows.reshape(-1)[:60].tolist()
    _assert_400(_post_json(url, doc), "the model takes [rows, 30]")
    inputs = _columns(churn)
    inputs[3] = {**inputs[3], "shape": [1], "data": inputs[3]["data"][:1]}
    _assert_400(_post_json(url, {"inputs": inputs}), "has 1 rows, other inputs have 2")


def test_negative_shape(url: str) -> None:
    doc = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 30], "data": [0.0] * 30}]}
    _assert_400(_post_json(url, doc), "dimensions must be integers >= 0")


def test_wrong_datatype(url: str, churn: Churn) -> None:
    inputs = _columns(churn)
    inputs[0] = {**inputs[0], "datatype": "BYTES", "data": ["a", "b"]}
    _assert_400(_post_json(url, {"inputs": inputs}), "expected numbers (float64), got BYTES")
    inputs[0] = {**inputs[0], "datatype": "BOOL", "data": [True, False]}
    _assert_400(_post_json(url, {"inputs": inputs}), "got BOOL")
    inputs[0] = {**inputs[0], "datatype": "FP128", "data": [1.0, 2.0]}
    _assert_400(_post_json(url, {"inputs": inputs}), "unsupported datatype 'FP128'")


def test_unknown_and_missing_tensors(url: str, churn: Churn) -> None:
    inputs = _columns(churn)
    extra = {"name": "bogus", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]}
    _assert_400(_post_json(url, {"inputs": [*inputs, extra]}), "unknown input tensor(s) ['bogus']")
    _assert_400(_post_json(url, {"inputs": inputs[1:]}), "missing input tensor 'mean radius'")
    body = {"inputs": inputs, "outputs": [{"name": "nope"}]}
    _assert_400(_post_json(url, body), "unknown output(s) ['nope']")


def test_non_finite_values_where_the_signature_forbids_them(url: str, churn: Churn) -> None:
    rows = churn.X.to_numpy()[:2].copy()
    rows[1, 4] = np.nan
    tensor = triton.InferInput("x", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows, binary_data=True)
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor])
    headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    _assert_400(httpx.post(url, content=body, headers=headers), "NaN or infinite")
    rows[1, 4] = np.inf
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [2, 30],
                    "parameters": {"binary_data_size": rows.nbytes},
                }
            ]
        }
    )
    response = httpx.post(
        url,
        content=header + rows.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    _assert_400(response, "NaN or infinite")


def test_malformed_json(url: str) -> None:
    _assert_400(httpx.post(url, content=b'{"inputs": ['), "not valid JSON")
    _assert_400(httpx.post(url, content=b"[1, 2]"), "must be a JSON object")
    _assert_400(_post_json(url, {"inputs": []}), "non-empty 'inputs'")


def test_bad_binary_framing(url: str) -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [1, 30],
                    "parameters": {"binary_data_size": 240},
                }
            ]
        }
    )
    body = header + b"\x00" * 240
    huge = httpx.post(url, content=body, headers={"Inference-Header-Content-Length": "99999999"})
    _assert_400(huge, "outside the body")
    short = httpx.post(
        url, content=body[:-8], headers={"Inference-Header-Content-Length": str(len(header))}
    )
    _assert_400(short, "runs past the end of the body")
    extra = httpx.post(
        url, content=body + b"\x00", headers={"Inference-Header-Content-Length": str(len(header))}
    )
    _assert_400(extra, "belong to no input")
    without_header = httpx.post(url, content=body)
    _assert_400(without_header, "not valid JSON")


def test_an_oversized_body_is_refused(churn: Churn) -> None:
    with keel_home(churn.home):
        service = ModelService.from_uri("models:/churn/1")
        service.load()
    with serving(create_app(service, max_body_bytes=1000)) as base:
        response = httpx.post(f"{base}/v2/models/churn/infer", content=b"x" * 2000)
    _assert_400(response, "exceeds 1000 bytes")


def test_a_model_that_fails_to_warm_never_reports_ready() -> None:
    model = Gated()
    model.fail = True
    runtime = ModelRuntime(
        loaded(model, columns=["a", "b"], example=[[1.0, 2.0]]), name="broken", version="1"
    )
    service = ModelService(lambda: runtime)
    with pytest.raises(KeelError, match=r"broken/1 failed to warm up.*cannot predict"):
        service.load()
    calls_before = model.entered.is_set()
    model.entered.clear()
    with serving(create_app(service)) as base:
        with triton_client(base) as client:
            assert client.is_server_live()
            assert not client.is_server_ready()
            assert not client.is_model_ready("broken")
        assert httpx.get(f"{base}/v2/health/ready").status_code == 400
        doc = {
            "inputs": [
                {"name": "a", "datatype": "FP64", "shape": [1], "data": [1.0]},
                {"name": "b", "datatype": "FP64", "shape": [1], "data": [1.0]},
            ]
        }
        response = _post_json(f"{base}/v2/models/broken/infer", doc)
        assert response.status_code == 503
        assert "failed to warm" in error_of(response)
        assert httpx.get(f"{base}/v2/models/broken").status_code == 503
    assert calls_before
    assert not model.entered.is_set()  # no request ever reached the model


def test_a_version_that_fails_to_load_never_reports_ready() -> None:
    def load() -> ModelRuntime:
        raise IntegrityError("digest mismatch for model.pkl")

    service = ModelService(load)
    with pytest.raises(IntegrityError):
        service.load()
    assert not service.server_ready()
    with serving(create_app(service)) as base:
        assert httpx.get(f"{base}/v2/health/ready").status_code == 400
        assert httpx.get(f"{base}/v2/health/live").status_code == 200
