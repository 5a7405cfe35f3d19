"""The gRPC codec: protobuf messages <-> protocol dataclasses, for every OIP datatype.

Raw requests are built by the standard client (``tritonclient.grpc``'s own InferInput and
request builder) and raw/typed responses are read back by its ``InferResult``, so both
directions are checked against the reference implementation, not only against this codec.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

from keel.errors import InvalidInput
from keel.serving import grpc_codec
from keel.serving.proto import grpc_predict_v2_pb2 as pb
from keel.serving.protocol import InferenceResponse, Tensor

tritonclient_grpc = pytest.importorskip("tritonclient.grpc")
from tritonclient.grpc import _utils as triton_utils  # noqa: E402
from tritonclient.grpc import service_pb2 as triton_pb  # noqa: E402

RNG = np.random.default_rng(7)


def _sample(datatype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    n = int(np.prod(shape))
    if datatype == "BOOL":
        return RNG.integers(0, 2, n).astype(bool).reshape(shape)
    if datatype == "BYTES":
        words = [b"", b"a", "é".encode(), b"\x00\xff", b"x" * 300, b"keel"]
        return np.array([words[i % len(words)] for i in range(n)], dtype=object).reshape(shape)
    dtype = np.dtype(grpc_codec.DATATYPES[datatype][0])
    if dtype.kind == "f":
        values = RNG.standard_normal(n) * 1000
        values[0] = np.finfo(dtype).max
        values[1] = -0.0
        return values.astype(dtype).reshape(shape)
    info = np.iinfo(dtype)
    values = RNG.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    values[0], values[1] = info.min, info.max
    return values.reshape(shape)


ALL_DATATYPES = list(grpc_codec.DATATYPES)
TYPED_DATATYPES = [d for d in ALL_DATATYPES if d != "FP16"]


def _assert_same(decoded: np.ndarray, expected: np.ndarray, datatype: str) -> None:
    assert decoded.shape == expected.shape
    if datatype == "BYTES":
        assert decoded.dtype == object
        assert decoded.tolist() == expected.tolist()
    else:
        assert decoded.dtype == np.dtype(grpc_codec.DATATYPES[datatype][0])
        np.testing.assert_array_equal(decoded, expected)


def _triton_request(
    arrays: dict[str, tuple[str, np.ndarray]], **kwargs: Any
) -> pb.ModelInferRequest:
    """A ModelInferRequest exactly as tritonclient.grpc builds it, parsed by Keel's schema."""
    inputs = []
    for name, (datatype, array) in arrays.items():
        infer_input = tritonclient_grpc.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    message = triton_utils._get_inference_request(
        model_name=kwargs.get("model_name", "m"),
        inputs=inputs,
        model_version=kwargs.get("model_version", ""),
        request_id=kwargs.get("request_id", ""),
        outputs=kwargs.get("outputs"),
        sequence_id=0,
        sequence_start=False,
        sequence_end=False,
        priority=0,
        timeout=None,
        parameters=kwargs.get("parameters"),
    )
    return pb.ModelInferRequest.FromString(message.SerializeToString())


def _typed_request(name: str, datatype: str, shape: list[int], **contents: Any) -> Any:
    message = pb.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name=name, datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    return message


def _triton_result(message: pb.ModelInferResponse) -> Any:
    return tritonclient_grpc.InferResult(
        triton_pb.ModelInferResponse.FromString(message.SerializeToString())
    )


# --- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", ALL_DATATYPES)
def test_raw_request_from_tritonclient_decodes_every_datatype(datatype: str) -> None:
    array = _sample(datatype)
    name, version, request = grpc_codec.decode_infer_request(
        _triton_request({"x": (datatype, array)}, model_version="3", request_id="r-1")
    )
    assert (name, version, request.id) == ("m", "3", "r-1")
    [tensor] = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", datatype, [2, 3])
    _assert_same(tensor.data, array, datatype)


@pytest.mark.parametrize("datatype", TYPED_DATATYPES)
def test_typed_request_decodes_every_datatype(datatype: str) -> None:
    array = _sample(datatype)
    field = grpc_codec.CONTENTS_FIELD[datatype]
    message = _typed_request("x", datatype, [2, 3], **{field: array.ravel().tolist()})
    _, version, request = grpc_codec.decode_infer_request(message)
    assert version is None
    assert request.id is None
    _assert_same(request.inputs[0].data, array, datatype)


def test_raw_arrays_share_the_message_buffer_and_are_read_only() -> None:
    array = _sample("FP32", (1000, 4))
    _, _, request = grpc_codec.decode_infer_request(_triton_request({"x": ("FP32", array)}))
    data = request.inputs[0].data
    assert not data.flags.writeable
    assert not data.flags.owndata


def test_raw_bool_is_any_non_zero_byte() -> None:
    message = pb.ModelInferRequest(model_name="m", raw_input_contents=[bytes([0, 1, 2, 255])])
    message.inputs.add(name="b", datatype="BOOL", shape=[4])
    _, _, request = grpc_codec.decode_infer_request(message)
    assert request.inputs[0].data.tolist() == [False, True, True, True]


def test_several_inputs_outputs_and_parameters() -> None:
    outputs = [
        tritonclient_grpc.InferRequestedOutput("y"),
        tritonclient_grpc.InferRequestedOutput("z"),
    ]
    message = _triton_request(
        {
            "a": ("INT64", np.arange(6).reshape(2, 3)),
            "b": ("BYTES", np.array([b"p", b"q"], dtype=object)),
        },
        outputs=outputs,
        parameters={"flag": True, "k": 5, "label": "x"},
    )
    _, _, request = grpc_codec.decode_infer_request(message)
    assert [t.name for t in request.inputs] == ["a", "b"]
    assert request.inputs[1].data.tolist() == [b"p", b"q"]
    assert [o.name for o in request.outputs] == ["y", "z"]
    assert request.parameters == {"flag": True, "k": 5, "label": "x"}


def test_zero_element_tensors() -> None:
    message = _triton_request({"x": ("FP32", np.zeros((0, 3), dtype=np.float32))})
    _, _, request = grpc_codec.decode_infer_request(message)
    assert request.inputs[0].data.shape == (0, 3)
    typed = _typed_request("x", "INT8", [0])
    assert grpc_codec.decode_infer_request(typed)[2].inputs[0].data.dtype == np.int8


# --- hostile requests -----------------------------------------------------------------------


def _raw(datatype: str, shape: list[int], raw: bytes, name: str = "x") -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m", raw_input_contents=[raw])
    message.inputs.add(name=name, datatype=datatype, shape=shape)
    return message


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (_raw("FP32", [2, 3], b"\x00" * 23), "needs 24 bytes"),
        (_raw("FP32", [2, 3], b"\x00" * 25), "needs 24 bytes"),
        (_raw("INT64", [-1, 2], b"\x00" * 16), "dimensions must be integers >= 0"),
        (_raw("FP99", [1], b"\x00" * 4), "unsupported datatype 'FP99'"),
        (_raw("BYTES", [2], b"\x01\x00\x00\x00a\x05\x00\x00\x00ab"), "declares 5 bytes"),
        (_raw("BYTES", [1], b"\x01\x00\x00\x00ab"), "left over"),
        (_raw("BYTES", [2], b"\x01\x00\x00\x00a\x00\x00\x00"), "end inside element 1"),
        (_typed_request("x", "FP32", [3], fp32_contents=[1.0, 2.0]), "holds 3 elements"),
        (_typed_request("x", "FP16", [1]), "send it in raw_input_contents"),
        (_typed_request("x", "FP32", [2], int_contents=[1, 2]), "go in fp32_contents"),
        (_typed_request("x", "INT8", [2], int_contents=[1, 300]), "must lie in [-128, 127]"),
        (_typed_request("x", "UINT16", [1], uint_contents=[70000]), "must lie in [0, 65535]"),
        (
            _typed_request("x", "FP32", [1], fp32_contents=[1.0], fp64_contents=[1.0]),
            "fp64_contents",
        ),
        (pb.ModelInferRequest(), "model_name is empty"),
    ],
)
def test_malformed_requests_are_invalid_input(message: pb.ModelInferRequest, words: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        grpc_codec.decode_infer_request(message)
    assert words in str(excinfo.value)


def test_raw_and_typed_contents_together_are_refused() -> None:
    message = _raw("FP32", [1], b"\x00" * 4)
    message.inputs[0].contents.fp32_contents.append(1.0)
    with pytest.raises(InvalidInput, match="use one or the other"):
        grpc_codec.decode_infer_request(message)


def test_raw_count_must_match_the_inputs() -> None:
    message = _raw("FP32", [1], b"\x00" * 4)
    message.inputs.add(name="y", datatype="FP32", shape=[1])
    with pytest.raises(InvalidInput, match="1 entries but the request has 2 inputs"):
        grpc_codec.decode_infer_request(message)


def test_inputs_need_distinct_names() -> None:
    message = pb.ModelInferRequest(model_name="m", raw_input_contents=[b"\x00" * 4] * 2)
    message.inputs.add(name="x", datatype="FP32", shape=[1])
    message.inputs.add(name="x", datatype="FP32", shape=[1])
    with pytest.raises(InvalidInput, match="more than once"):
        grpc_codec.decode_infer_request(message)


HUGE = [2**31, 2**31, 2**20]


@pytest.mark.parametrize(
    "message",
    [
        _raw("FP64", HUGE, b"\x00" * 8),
        _raw("BYTES", HUGE, b"\x01\x00\x00\x00a"),
        _raw("BOOL", [2**62, 4], b"\x01"),
        _typed_request("x", "FP32", HUGE, fp32_contents=[1.0]),
        _typed_request("x", "BYTES", HUGE, bytes_contents=[b"a"]),
        _raw("FP32", [0, 2**62, 2**62], b""),
    ],
)
def test_huge_declared_shapes_with_tiny_data_allocate_nothing_big(message: Any) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInput):
            grpc_codec.decode_infer_request(message)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


# --- responses ------------------------------------------------------------------------------


def _response(datatype: str, array: np.ndarray) -> InferenceResponse:
    return InferenceResponse(
        model_name="m",
        model_version="2",
        outputs=[
            Tensor("y", datatype, list(array.shape), array),
            Tensor("n", "INT32", [1], np.array([7], np.int32)),
        ],
        id="req-9",
        parameters={"note": "hello", "ok": True, "count": 3, "score": 0.5},
    )


@pytest.mark.parametrize("datatype", ALL_DATATYPES)
def test_raw_responses_read_back_by_tritonclient(datatype: str) -> None:
    array = _sample(datatype, (3, 2))
    message = grpc_codec.encode_infer_response(_response(datatype, array), raw=True)
    assert len(message.raw_output_contents) == 2
    assert not any(out.HasField("contents") for out in message.outputs)
    result = _triton_result(message)
    got = result.as_numpy("y")
    if datatype == "BYTES":
        assert got.tolist() == array.tolist()
    else:
        assert got.dtype == array.dtype
        np.testing.assert_array_equal(got, array)
    assert result.as_numpy("n").tolist() == [7]
    meta = result.get_response(as_json=True)
    assert (meta["model_name"], meta["model_version"], meta["id"]) == ("m", "2", "req-9")
    assert grpc_codec.decode_parameters(message.parameters) == _response(datatype, array).parameters


@pytest.mark.parametrize("datatype", TYPED_DATATYPES)
def test_typed_responses_use_the_datatype_field(datatype: str) -> None:
    array = _sample(datatype, (3, 2))
    message = grpc_codec.encode_infer_response(_response(datatype, array), raw=False)
    assert len(message.raw_output_contents) == 0
    out = message.outputs[0]
    assert (out.name, out.datatype, list(out.shape)) == ("y", datatype, [3, 2])
    field = grpc_codec.CONTENTS_FIELD[datatype]
    filled = [f for f in grpc_codec._ALL_FIELDS if len(getattr(out.contents, f))]
    assert filled == [field]
    values = list(getattr(out.contents, field))
    if datatype == "FP32":  # float32 values survive the float field exactly
        np.testing.assert_array_equal(np.array(values, np.float32), array.ravel())
    else:
        assert values == array.ravel().tolist()
    # and the typed message decodes back through Keel's own request path
    request = pb.ModelInferRequest(model_name="m")
    request.inputs.add(name="y", datatype=datatype, shape=[3, 2]).contents.CopyFrom(out.contents)
    _assert_same(grpc_codec.decode_infer_request(request)[2].inputs[0].data, array, datatype)


def test_an_fp16_output_makes_the_response_raw() -> None:
    array = _sample("FP16", (3, 2))
    message = grpc_codec.encode_infer_response(_response("FP16", array), raw=False)
    assert len(message.raw_output_contents) == 2
    np.testing.assert_array_equal(_triton_result(message).as_numpy("y"), array)


def test_string_outputs_are_utf8_bytes() -> None:
    response = InferenceResponse(
        "m", None, [Tensor("label", "BYTES", [2], np.array(["benign", "é"]))]
    )
    message = grpc_codec.encode_infer_response(response, raw=False)
    assert list(message.outputs[0].contents.bytes_contents) == [b"benign", "é".encode()]
    assert message.model_version == ""


def test_output_shape_must_match_its_data() -> None:
    response = InferenceResponse("m", "1", [Tensor("y", "FP32", [4], np.zeros(3, np.float32))])
    with pytest.raises(InvalidInput, match="holds 4 elements"):
        grpc_codec.encode_infer_response(response, raw=True)


def test_parameters_round_trip_and_refuse_other_types() -> None:
    message = pb.ModelInferResponse()
    params = {"b": False, "i": -3, "u": 2**63 + 1, "f": 1.5, "s": "x", "np": np.int64(4)}
    grpc_codec.encode_parameters(message.parameters, params)
    assert grpc_codec.decode_parameters(message.parameters) == {**params, "np": 4}
    assert message.parameters["u"].WhichOneof("parameter_choice") == "uint64_param"
    with pytest.raises(InvalidInput, match="a list cannot be sent"):
        grpc_codec.encode_parameters(message.parameters, {"l": [1]})


def test_bytes_raw_round_trip() -> None:
    array = _sample("BYTES", (4, 3))
    raw = grpc_codec.encode_bytes_raw(array)
    assert raw[:4] == len(array.flat[0]).to_bytes(4, "little")
    np.testing.assert_array_equal(grpc_codec.decode_bytes_raw("x", raw, [4, 3]), array)


def test_model_and_server_metadata() -> None:
    from keel.serving.protocol import ModelMetadata, ServerMetadata, TensorMetadata

    meta = ModelMetadata(
        "cancer",
        ["1", "2"],
        "sklearn",
        [TensorMetadata("x", "FP64", [-1, 30])],
        [TensorMetadata("y", "INT64", [-1])],
    )
    message = grpc_codec.encode_model_metadata(meta)
    assert list(message.inputs[0].shape) == [-1, 30]
    assert (message.name, list(message.versions), message.platform) == (
        "cancer",
        ["1", "2"],
        "sklearn",
    )
    server = grpc_codec.encode_server_metadata(
        ServerMetadata("keel", "0.1", ["binary_tensor_data"])
    )
    assert list(server.extensions) == ["binary_tensor_data"]
