"""The REST codecs: every protocol datatype round-trips through JSON and binary forms."""

from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
from tritonclient.utils import serialize_byte_tensor

from keel.errors import InvalidInput
from keel.serving.codec_binary import BinaryReader, split_body, tensor_to_bytes
from keel.serving.codec_json import decode_request, encode_response, tensor_from_json
from keel.serving.protocol import (
    DATATYPES,
    InferenceResponse,
    Tensor,
    datatype_of,
    element_size,
    numpy_dtype,
)

SAMPLES = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 7, 255], [1, 2, 3]], dtype=np.uint8),
    "UINT16": np.array([[0, 65535, 9], [1, 2, 3]], dtype=np.uint16),
    "UINT32": np.array([[0, 2**32 - 1, 9], [1, 2, 3]], dtype=np.uint32),
    "UINT64": np.array([[0, 2**64 - 1, 9], [1, 2, 3]], dtype=np.uint64),
    "INT8": np.array([[-128, 0, 127], [1, 2, 3]], dtype=np.int8),
    "INT16": np.array([[-32768, 0, 32767], [1, 2, 3]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1], [1, 2, 3]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1], [1, 2, 3]], dtype=np.int64),
    "FP16": np.array([[0.5, -1.25, 65504.0], [1, 2, 3]], dtype=np.float16),
    "FP32": np.array([[0.1, -1e30, 3.5], [1, 2, 3]], dtype=np.float32),
    "FP64": np.array([[0.1, -1e300, np.pi], [1, 2, 3]], dtype=np.float64),
    "BYTES": np.array([[b"a", b"", "é".encode()], [b"xyz", b"1", b"2"]], dtype=object),
}


def test_the_table_covers_every_protocol_datatype() -> None:
    assert set(DATATYPES) == set(SAMPLES)
    for datatype, array in SAMPLES.items():
        assert datatype_of(array) == datatype
        if datatype != "BYTES":
            assert numpy_dtype(datatype) == array.dtype
            assert element_size(datatype) == array.dtype.itemsize


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_json_round_trip(datatype: str) -> None:
    array = SAMPLES[datatype]
    tensor = Tensor("t", datatype, list(array.shape), array)
    header, blob = encode_response(InferenceResponse("m", "1", [tensor]), set())
    assert blob == b""
    out = orjson.loads(header)["outputs"][0]
    assert (out["name"], out["datatype"], out["shape"]) == ("t", datatype, [2, 3])
    back = tensor_from_json("t", datatype, out["shape"], out["data"])
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_binary_round_trip_matches_the_standard_client(datatype: str) -> None:
    array = SAMPLES[datatype]
    raw = tensor_to_bytes(Tensor("t", datatype, [2, 3], array))
    standard = serialize_byte_tensor(array).item() if datatype == "BYTES" else array.tobytes()
    assert raw == standard
    back = BinaryReader(memoryview(raw)).read("t", datatype, [2, 3], len(raw))
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_a_request_with_json_and_binary_inputs() -> None:
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    words = np.array([b"ab", b"c"], dtype=object)
    doc = {
        "id": "r1",
        "parameters": {"binary_data_output": True},
        "inputs": [
            {
                "name": "a",
                "datatype": "INT32",
                "shape": [2, 3],
                "parameters": {"binary_data_size": ints.nbytes},
            },
            {"name": "b", "datatype": "FP32", "shape": [2], "data": [1.5, 2]},
            {
                "name": "c",
                "datatype": "BYTES",
                "shape": [2],
                "parameters": {"binary_data_size": 11},
            },
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
    }
    header = orjson.dumps(doc)
    body = header + ints.tobytes() + serialize_byte_tensor(words).item()
    json_part, binary = split_body(body, str(len(header)))
    request = decode_request(orjson.loads(json_part), binary)
    assert request.id == "r1"
    assert request.parameters == {"binary_data_output": True}
    np.testing.assert_array_equal(request.inputs[0].data, ints)
    np.testing.assert_array_equal(request.inputs[1].data, np.array([1.5, 2.0], np.float32))
    assert request.inputs[2].data.tolist() == [b"ab", b"c"]
    assert request.outputs[0].parameters == {"binary_data": False}


def test_an_unversioned_model_omits_model_version() -> None:
    tensor = Tensor("p", "INT64", [1], np.array([1]))
    doc = orjson.loads(encode_response(InferenceResponse("m", None, [tensor], id="i"), set())[0])
    assert doc == {
        "model_name": "m",
        "id": "i",
        "outputs": [{"name": "p", "datatype": "INT64", "shape": [1], "data": [1]}],
    }


def test_binary_response_sizes_and_order() -> None:
    a = np.array([1, 2], dtype=np.int64)
    b = np.array([[0.5, 0.5]], dtype=np.float64)
    response = InferenceResponse(
        "m", "1", [Tensor("a", "INT64", [2], a), Tensor("b", "FP64", [1, 2], b)]
    )
    header, blob = encode_response(response, {"a", "b"})
    outputs = orjson.loads(header)["outputs"]
    assert [o["parameters"]["binary_data_size"] for o in outputs] == [16, 16]
    assert "data" not in outputs[0]
    assert blob == a.tobytes() + b.tobytes()


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "match"),
    [
        ("FP32", [3], [1.0, 2.0], "holds 3 elements but data has 2"),
        ("FP32", [-1], [1.0], "dimensions must be integers >= 0"),
        ("FP32", [1.5], [1.0], "dimensions must be integers >= 0"),
        ("INT8", [1], [300], "out of range for INT8"),
        ("UINT8", [1], [-1], "out of range for UINT8"),
        ("UINT64", [1], [2**64], "integers in range"),
        ("UINT64", [2], [2**64 - 1, 1.5], "must be integers"),
        ("INT32", [1], [1.5], "must be integers"),
        ("BOOL", [1], [1], "BOOL data must be true/false"),
        ("FP64", [1], ["1.0"], "must be numbers"),
        ("FP64", [2], [[1.0], [2.0, 3.0]], "ragged"),
        ("BYTES", [1], [1], "BYTES data must be strings"),
    ],
)
def test_bad_json_tensors(datatype: str, shape: list, data: list, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        doc = {"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": data}]}
        decode_request(doc)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({}, "non-empty 'inputs' list"),
        ([], "must be a JSON object"),
        ({"inputs": [{"name": "x", "datatype": "FP99", "shape": [1], "data": [1]}]}, "FP99"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}, "has no 'data'"),
        ({"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}, "string 'name'"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}, "'shape' list"),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}] * 2}, "unique"),
        (
            {"id": 5, "inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]},
            "'id'",
        ),
    ],
)
def test_bad_request_documents(doc: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        decode_request(doc)


def test_bad_binary_parts() -> None:
    with pytest.raises(InvalidInput, match="outside the body"):
        split_body(b"{}", "1000000")
    with pytest.raises(InvalidInput, match="outside the body"):
        split_body(b"{}", "-1")
    with pytest.raises(InvalidInput, match="must be an integer"):
        split_body(b"{}", "ten")
    reader = BinaryReader(memoryview(b"\x00" * 8))
    with pytest.raises(InvalidInput, match="runs past the end"):
        reader.read("x", "FP64", [2], 16)
    with pytest.raises(InvalidInput, match="needs 16 bytes"):
        BinaryReader(memoryview(b"\x00" * 8)).read("x", "FP64", [2], 8)
    leftover = BinaryReader(memoryview(b"\x00" * 9))
    leftover.read("x", "FP64", [1], 8)
    with pytest.raises(InvalidInput, match="1 bytes of binary tensor data belong to no input"):
        leftover.finish()
    truncated = struct.pack("<I", 5) + b"ab"
    with pytest.raises(InvalidInput, match="runs past its data"):
        BinaryReader(memoryview(truncated)).read("s", "BYTES", [1], len(truncated))
    with pytest.raises(InvalidInput, match="binary_data_size must be an integer"):
        BinaryReader(memoryview(b"")).read("x", "FP64", [0], -3)
