"""The OIP JSON codec's fast read of flat float data answers as ``numpy.asarray`` did.

``tensor_from_json`` packs a flat list (or equal rows) led by a float with ``struct`` for
FP16/FP32/FP64 tensors; the reference below is the general path (``numpy.asarray``, then
the kind checks and the cast), which every other input still takes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.serving.codec_json import _cast, decode_request, parse_json, tensor_from_json
from keel.serving.protocol import check_shape


def reference(datatype: str, shape: list[int], data: Any) -> tuple[str, Any]:
    """``("ok", array)`` or ``("error", message)`` from the general path."""
    try:
        try:
            raw = np.asarray(data)
        except (ValueError, TypeError):
            raise InvalidInput("input 'x': 'data' is ragged or not all numbers") from None
        array = _cast("x", datatype, raw)
        check_shape("x", shape, array.size)
        return "ok", array.reshape(shape)
    except InvalidInput as exc:
        return "error", str(exc)


def fast(datatype: str, shape: list[int], data: Any) -> tuple[str, Any]:
    try:
        return "ok", tensor_from_json("x", datatype, shape, data)
    except InvalidInput as exc:
        return "error", str(exc)


def _same(datatype: str, shape: list[int], data: Any) -> None:
    expected, got = reference(datatype, shape, data), fast(datatype, shape, data)
    assert got[0] == expected[0], (got, expected)
    if got[0] == "error":
        assert got[1] == expected[1]
        return
    assert got[1].dtype == expected[1].dtype
    assert got[1].shape == expected[1].shape
    assert got[1].tobytes() == expected[1].tobytes()  # bit for bit
    assert got[1].flags.writeable


EDGES = {
    "floats": [1.5, -0.0, 1e-300, 2.5],
    "ints after a float": [1.5, 2, 3, 4],
    "a huge int after a float": [1.5, 2**63, 2**64 - 1, 7],
    "booleans after a float": [1.5, True, False, 2.0],
    "None": [1.5, None, 2.0, 3.0],
    "text": [1.5, "2", 3.0, 4.0],
    "a list": [1.5, [2.0], 3.0, 4.0],
    "an object": [1.5, {"a": 1}, 3.0, 4.0],
    "all ints": [1, 2, 3, 4],
    "booleans first": [True, 1.5, 2.0, 3.0],
    "too many": [1.5, 2.0, 3.0, 4.0, 5.0],
    "too few": [1.5, 2.0, 3.0],
    "large for FP16": [1.5, 1e300, -1e300, 7e4],
}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("datatype", ["FP64", "FP32", "FP16"])
@pytest.mark.parametrize("data", list(EDGES.values()), ids=list(EDGES))
def test_edges_answer_as_the_general_path(data: Any, datatype: str) -> None:
    _same(datatype, [2, 2], data)


@pytest.mark.parametrize(
    "data",
    [
        [[1.5, 2.0], [3.0, 4.0]],
        [[1.5, 2], [3, 4]],
        [[1.5, True], [False, 4.0]],
        [[1.5, 2.0], [3.0]],
        [[1.5, 2.0], [3.0, 4.0, 5.0]],
        [[1.5, 2.0, 3.0], [4.0]],
        [[1.5, None], [3.0, 4.0]],
        [[1.5, "2"], [3.0, 4.0]],
        [[[1.5, 2.0]], [[3.0, 4.0]]],
        [[1.5, [2.0]], [3.0, 4.0]],
        [[1.5, 2.0], 3.0, 4.0],
        [[1, 2], [3, 4.5]],
        [[True, 1.5], [2.0, 3.0]],
        [[], []],
        [],
        1.5,
    ],
)
@pytest.mark.parametrize("shape", [[2, 2], [4], [1, 4]])
def test_nested_and_empty_data_answer_as_the_general_path(data: Any, shape: list[int]) -> None:
    _same("FP64", shape, data)
    _same("FP32", shape, data)


def test_a_whole_request_reads_the_same() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(size=(100, 30))
    raw = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [100, 30],
                    "data": values.ravel().tolist(),
                }
            ]
        }
    )
    [tensor] = decode_request(parse_json(raw)).inputs
    assert tensor.data.shape == (100, 30)
    assert tensor.data.tobytes() == values.tobytes()


_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
    st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=2),
)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(_VALUE, min_size=1, max_size=3), min_size=1, max_size=4),
    st.booleans(),
)
def test_generated_rows_answer_as_the_general_path(rows: list[Any], float_first: bool) -> None:
    if float_first:
        rows[0][0] = 0.5
    rows = orjson.loads(orjson.dumps(rows))
    size = sum(len(r) if isinstance(r, list) else 1 for r in rows)
    _same("FP64", [size], rows)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@settings(max_examples=300, deadline=None)
@given(
    st.lists(_VALUE, min_size=1, max_size=8),
    st.booleans(),
    st.sampled_from(["FP64", "FP32"]),
)
def test_generated_data_answers_as_the_general_path(
    data: list[Any], float_first: bool, datatype: str
) -> None:
    if float_first:
        data[0] = 0.5
    data = orjson.loads(orjson.dumps(data))  # what the codec gets: parsed JSON
    _same(datatype, [len(data)], data)
