"""``split_matrix``'s fast conversion of ``dataframe_split`` rows: the answer never changes.

The fast path (``struct`` packing of float rows, booleans ruled out from the body's tail) is
checked against a reference — ``numpy.array`` of the parsed rows after a type check of every
value, which is what ``split_matrix`` did before — on hand-picked edges and on generated
bodies, and end to end: every body gets the same predictions, or the same error, through
``split_matrix`` + ``prepare_rows`` as through the DataFrame path alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oip_support import keel_home

from keel.errors import InvalidInput
from keel.serving._uvicorn import serving
from keel.serving.codec_json import parse_json
from keel.serving.mlflow_formats import frame_of, split_matrix
from keel.serving.rest import create_app
from keel.serving.runtime import ModelRuntime, load_runtime
from keel.serving.service import ModelService

COLUMNS = ["a", "t", "\u00e9t\u00e9"]  # letters of true/false in names are not booleans


def reference(doc: Any) -> np.ndarray | None:
    """The matrix a plain numeric split (or rows) holds, checked value by value (the old way)."""
    [(key, value)] = doc.items()
    data = value["data"] if key == "dataframe_split" else value
    if not data or not all(type(row) is list for row in data):
        return None
    if not all(type(v) in (int, float) for row in data for v in row):
        return None  # booleans, None, text, nesting
    try:
        matrix = np.array(data)
    except (TypeError, ValueError, OverflowError):
        return None
    if matrix.ndim != 2 or matrix.dtype.kind not in "iuf":
        return None
    if matrix.dtype.kind == "f" and matrix.size and np.abs(matrix).max() > 2.0**53:
        return None
    return matrix


def _same(got: Any, doc: Any) -> None:
    expected = reference(doc)
    if expected is None:
        assert got is None
        return
    assert got is not None
    names, matrix = got
    split = doc.get("dataframe_split")
    assert names == (None if split is None else split["columns"])
    assert matrix.dtype == expected.dtype
    assert matrix.shape == expected.shape
    assert matrix.tobytes() == expected.tobytes()  # bit for bit: -0.0 stays -0.0


def _body(
    rows: Any, columns: list[str] = COLUMNS, *, data_first: bool = False, key: str = "split"
) -> bytes:
    split = {"data": rows, "columns": columns} if data_first else {"columns": columns, "data": rows}
    doc = {"dataframe_split": split} if key == "split" else {key: rows}
    # json, not orjson: orjson refuses integers beyond 64 bits
    return json.dumps(doc, ensure_ascii=False).encode()


KEYS = ["split", "instances", "inputs"]


EDGES = {
    "floats": [[1.5, 2.0, -3.25], [0.0, -0.0, 1e-300]],
    "ints after a float": [[1.5, 2, 3], [4, 5, 6]],
    "a float after ints": [[1, 2, 3], [4, 5, 6.5]],
    "all ints": [[1, 2, 3], [4, 5, 6]],
    "exponents": [[1e5, -2.5e-3, 1e-400]],
    "2**53 exactly": [[1.5, 2.0**53, -(2.0**53)]],
    "beyond 2**53": [[1.5, 2.0, 2.0**53 + 2]],
    "beyond -2**53": [[1.5, 2.0, -1e20]],
    "huge float": [[1.5, 1e300, 0.0]],
    "huge int": [[1.5, 2, 2**63]],
    "beyond uint64": [[1.5, 2, 2**64]],
    "int beyond 2**53": [[1.5, 2, 2**53 + 1]],
    "true": [[1.5, True, 2.0]],
    "false": [[1.5, 2.0, False]],
    "leading true": [[True, 1.5, 2.0]],
    "null": [[1.5, None, 2.0]],
    "text": [[1.5, "2", 3.0]],
    "text true": [[1.5, "true", 3.0]],
    "ragged": [[1.5, 2.0, 3.0], [4.0, 5.0]],
    "ragged longer": [[1.5, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]],
    "same count, other shape": [[1.5, 2.0, 3.0, 4.0], [5.0, 6.0]],
    "nested": [[1.5, [2.0], 3.0]],
    "deeper": [[[1.5, 2.0, 3.0]]],
    "a row that is a number": [[1.5, 2.0, 3.0], 4.0],
    "rows that are numbers": [1.5, 2.0, 3.0],
    "a row that is text": [[1.5, 2.0, 3.0], "abc"],
    "a row that is an object": [[1.5, 2.0, 3.0], {"a": 1.0, "t": 2.0, "x": 3.0}],
    "an object in a row": [[1.5, {"a": True}, 3.0]],
    "empty rows": [[], []],
    "no rows": [],
    "one column": [[1.5], [2.5]],
}


@pytest.mark.parametrize(
    ("key", "data_first"),
    [("split", False), ("split", True), ("instances", False), ("inputs", False)],
    ids=["columns-first", "data-first", "instances", "inputs"],
)
@pytest.mark.parametrize("rows", list(EDGES.values()), ids=list(EDGES))
def test_edges_match_the_reference(rows: Any, key: str, data_first: bool) -> None:
    raw = _body(rows, data_first=data_first, key=key)
    doc = parse_json(raw)
    _same(split_matrix(doc, raw), doc)
    _same(split_matrix(doc), doc)  # without the body: the value-by-value check


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("rows", [EDGES["floats"], EDGES["ints after a float"]])
def test_plain_rows_take_the_fast_path(rows: Any, key: str) -> None:
    raw = _body(rows, key=key)
    names, matrix = split_matrix(parse_json(raw), raw)
    assert names == (COLUMNS if key == "split" else None)
    assert matrix.dtype == np.float64
    assert matrix.flags.c_contiguous
    assert matrix.flags.writeable  # a model may scale its input in place
    matrix[0, 0] = 7.0


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "rows", [[[0, 1.5, 2.0], [3, 4, 5]], [[0, 1, 2], [3, 4, 5e0]], [[7, 8, 9], [1, 2, -3.0]]]
)
def test_rows_led_by_an_integer_take_the_fast_path_when_a_float_follows(
    rows: Any, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.serving.mlflow_formats as formats

    raw = _body(rows, key=key)
    doc = parse_json(raw)
    expected = reference(doc)
    monkeypatch.setattr(formats, "_numeric_rows", lambda data: pytest.fail("numpy.array path"))
    got = split_matrix(doc, raw)
    assert got is not None
    assert got[1].dtype == expected.dtype == np.float64
    assert got[1].tobytes() == expected.tobytes()


def test_whitespace_anywhere_is_read_the_same() -> None:
    rows = [[1.5, 2, -0.0], [3.25, 4.5, 1e-7]]
    compact = _body(rows)
    doc = {"dataframe_split": {"columns": COLUMNS, "data": rows}}
    for raw in (
        json.dumps(doc, indent=4, ensure_ascii=False).encode(),
        json.dumps(doc, indent="\t", separators=(" ,", " : "), ensure_ascii=False).encode(),
        b'\r\n { "dataframe_split" : { "columns" : ["a","t","\xc3\xa9t\xc3\xa9"] , "data"'
        + b" " * 200  # past the 64 bytes looked at for the colon: the count check decides
        + b": [ [ 1.5 , 2 , -0.0 ] ,\n[3.25,4.5,1e-7] ] } } \n",
    ):
        doc = parse_json(raw)
        got = split_matrix(doc, raw)
        assert got is not None
        assert got[1].tobytes() == split_matrix(parse_json(compact), compact)[1].tobytes()


@pytest.mark.parametrize("zeros", [0, 3, 200])
@pytest.mark.parametrize("hidden", [None, True, False])
def test_booleans_among_zeros_and_ones_are_found_without_the_body(
    zeros: int, hidden: bool | None
) -> None:
    rng = np.random.default_rng(zeros)
    values = rng.normal(size=(100, 3)).tolist()
    for k in range(zeros):  # values a boolean would read as
        values[k // 3][k % 3] = float(k % 2)
    if hidden is not None:
        values[60][1] = hidden
    doc = {"dataframe_split": {"columns": COLUMNS, "data": values}}
    _same(split_matrix(doc), doc)
    assert (split_matrix(doc) is None) == (hidden is not None)


@pytest.mark.parametrize("named_data", [1, 20])
def test_a_column_named_data_is_not_the_data_key(named_data: int) -> None:
    columns = [*(["data"] * named_data), "x"]  # past a few, the letter count decides
    raw = _body([[1.5] * named_data + [2.0]], columns)
    assert split_matrix(parse_json(raw), raw)[1].tolist() == [[1.5] * named_data + [2.0]]
    raw = _body([[1.5] * named_data + [True]], columns)
    assert split_matrix(parse_json(raw), raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        # orjson keeps the last of duplicate keys; the booleans are in the kept one
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2.5]], '
        b'"data": [[1.5, true]]}}',
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, true]], '
        b'"data": [[1.5, 2.5]]}}',
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, true]]}, '
        b'"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2.5]]}}',
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, 2.5]]}, '
        b'"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, false]]}}',
        b'{"dataframe_split": {"data": [[1.5, 2.5]], "columns": ["a", "b"], '
        b'"data": [[2.5, true]]}}',
        b'{"instances": [[1.5, 2.5]], "instances": [[2.5, true]]}',
        b'{"inputs": [[1.5, false]], "inputs": [[2.5, 1.5]]}',
        b'{"instances": [[1.5, 2.5]], "inputs": [[2.5, true]]}',
    ],
)
def test_duplicate_keys_never_read_booleans_as_numbers(raw: bytes) -> None:
    doc = parse_json(raw)
    got = split_matrix(doc, raw)
    assert got is None or got[1].tobytes() == reference(doc).tobytes()


@pytest.mark.parametrize(
    "columns",
    [["a\\", "b"], ["\u00e9\u00e8", "b"], ["a\nb", "c"], ["\u2028", "x"], ["\x00", "x"]],
)
def test_names_with_escapes_or_unicode_answer_as_the_reference(columns: list[str]) -> None:
    for rows in ([[1.5, 2.5]], [[1.5, True]]):
        raw = orjson.dumps({"dataframe_split": {"columns": columns, "data": rows}})
        doc = parse_json(raw)
        got = split_matrix(doc, raw)
        # an escape may hide a letter: the DataFrame may decide, never a wrong matrix
        assert got is None or got[1].tobytes() == reference(doc).tobytes()
        if b"\\" not in raw:
            _same(got, doc)
    raw = json.dumps({"dataframe_split": {"columns": ["\u00e9", "b"], "data": [[1.5, 2]]}})
    assert b"\\u00e9" in raw.encode()  # json.dumps escapes non-ASCII: left to the frame
    assert split_matrix(parse_json(raw.encode()), raw.encode()) is None


@pytest.mark.parametrize(
    "token", [b"NaN", b"Infinity", b"-Infinity", b"nan", b"1e400", b"-1e999", b"01", b"1.", b".5"]
)
def test_tokens_json_does_not_allow_are_refused_before_any_matrix(token: bytes) -> None:
    raw = b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, ' + token + b"]]}}"
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_json(raw)


def test_many_rows() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(size=(5_000, 30)) * 10.0 ** rng.integers(-20, 10, size=(5_000, 30))
    raw = _body(values.tolist(), [f"c{j}" for j in range(30)])
    matrix = split_matrix(parse_json(raw), raw)[1]
    assert matrix.tobytes() == values.tobytes()  # orjson round-trips every float exactly


_NAME = st.text(st.sampled_from("atfrueslé é_1"), min_size=1, max_size=6)
_NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(round),
)
_VALUE = st.one_of(
    _NUMBER,
    _NUMBER,
    _NUMBER,
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(_NUMBER, max_size=2),
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 4))
    columns = draw(st.lists(_NAME, min_size=width, max_size=width, unique=True))
    ragged = draw(st.booleans())
    row = st.lists(_VALUE, min_size=1 if ragged else width, max_size=width + 1 if ragged else width)
    plain = st.lists(_NUMBER, min_size=width, max_size=width)
    rows = draw(st.lists(st.one_of(plain, plain, row), min_size=1, max_size=5))
    if draw(st.booleans()) and rows and rows[0]:
        rows[0][0] = float(draw(st.floats(allow_nan=False, allow_infinity=False)))
    split = {"columns": columns, "data": rows}
    if draw(st.booleans()):
        split = {"data": rows, "columns": columns}
    key = draw(st.sampled_from(["dataframe_split", "instances", "inputs"]))
    doc = {key: split if key == "dataframe_split" else rows}
    if draw(st.booleans()):
        return orjson.dumps(doc)
    indent = draw(st.sampled_from([None, 0, 2, "\t"]))
    return json.dumps(doc, indent=indent, ensure_ascii=False).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_bodies())
def test_generated_bodies_match_the_reference(raw: bytes) -> None:
    doc = parse_json(raw)
    _same(split_matrix(doc, raw), doc)
    _same(split_matrix(doc), doc)


# -- end to end: the fast path answers as the DataFrame path -------------------------------


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ModelRuntime]]:
    """Logistic regressions on 3 float columns, fitted on an array and on a DataFrame."""
    from sklearn.linear_model import LogisticRegression

    import keel

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=COLUMNS)
    y = (X["a"] + X["t"] * 2 > 0).astype(int)
    out = {}
    with keel_home(tmp_path_factory.mktemp("split-rows-home")):
        for name, fitted_on in (("on-array", X.to_numpy()), ("on-frame", X)):
            model = LogisticRegression().fit(fitted_on, y)
            with keel.start_run(experiment="split-rows") as run:
                run.log_model(model, "model", input_example=X[:5])
            keel.register_model(f"runs:/{run.run_id}/model", name)
            runtime = load_runtime(f"models:/{name}/1")
            runtime.warm()
            out[name] = runtime
        yield out


def _answer(runtime: ModelRuntime, raw: bytes, *, fast: bool) -> tuple[str, Any]:
    """What ``/invocations`` answers: ``("ok", predictions)`` or ``("error", message)``."""
    try:
        doc = parse_json(raw)
        rows = split_matrix(doc, raw) if fast else None
        prepared = None if rows is None else runtime.prepare_rows(*rows)
        if prepared is None:
            prepared = runtime.prepare_frame(frame_of(doc))
        return "ok", runtime.run([prepared])["predict"].tolist()
    except Exception as exc:
        return "error", f"{type(exc).__name__}: {exc}"


E2E = {
    **{k: EDGES[k] for k in EDGES if k not in ("huge float", "beyond uint64")},
    "many": np.random.default_rng(5).normal(size=(300, 3)).tolist(),
    "whole floats": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
}


@pytest.mark.parametrize("which", ["on-array", "on-frame"])
def test_every_body_answers_as_the_dataframe_path(
    runtimes: dict[str, ModelRuntime], which: str
) -> None:
    runtime = runtimes[which]
    for label, rows in E2E.items():
        for columns in (COLUMNS, COLUMNS[::-1], ["a", "t", "x"]):
            for data_first in (False, True):
                raw = _body(rows, columns, data_first=data_first)
                slow = _answer(runtime, raw, fast=False)
                assert _answer(runtime, raw, fast=True) == slow, (label, columns, data_first)
        for key in ("instances", "inputs"):
            raw = _body(rows, key=key)
            assert _answer(runtime, raw, fast=True) == _answer(runtime, raw, fast=False), (
                label,
                key,
            )


def test_keel_serve_answers_edge_bodies(runtimes: dict[str, ModelRuntime]) -> None:
    runtime = runtimes["on-array"]
    service = ModelService(lambda: runtime)
    service.load()
    plain = E2E["many"][:100]
    json_type = {"content-type": "application/json"}
    with serving(create_app(service)) as base, httpx.Client(base_url=base) as client:
        for raw in (
            _body(plain),
            _body(plain, COLUMNS[::-1]),
            _body(plain, data_first=True),
            _body(plain, key="instances"),
            _body(plain, key="inputs"),
        ):
            answer = client.post(
                "/invocations", content=raw, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == _answer(runtime, raw, fast=False)[1]
        for rows, message in (
            (EDGES["true"], "expected numbers"),
            (EDGES["null"], "expected numbers"),
            (EDGES["ragged"], "must all have the same number of values, got 2 to 3"),
        ):
            raw = _body(rows)
            answer = client.post(
                "/invocations", content=raw, headers={"content-type": "application/json"}
            )
            assert answer.status_code == 400, answer.text
            assert message in answer.json()["message"]
            assert answer.json()["message"] in _answer(runtime, raw, fast=False)[1]
        answer = client.post(
            "/invocations",
            content=b'{"dataframe_split": {"columns": ["a"], "data": [[NaN]]}}',
            headers=json_type,
        )
        assert answer.status_code == 400
        assert "not valid JSON" in answer.json()["message"]


@pytest.mark.parametrize(
    "doc",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0], [3.0]]}},
        {"instances": [[1.0, 2.0], [3.0]]},
        {"inputs": [[1.0], [2.0, 3.0, 4.0]]},
    ],
)
def test_ragged_rows_are_refused_by_the_frame_path_too(doc: Any) -> None:
    with pytest.raises(InvalidInput, match="must all have the same number of values"):
        frame_of(doc)


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_positional_rows_are_read_in_the_signature_order(
    runtimes: dict[str, ModelRuntime], key: str
) -> None:
    runtime = runtimes["on-array"]
    rows = np.random.default_rng(11).normal(size=(20, 3))
    raw = _body(rows.tolist(), key=key)
    names, matrix = split_matrix(parse_json(raw), raw)
    prepared = runtime.prepare_rows(names, matrix)
    assert prepared is not None
    assert prepared.block is not None  # predicted on the array, no DataFrame built
    assert runtime.run([prepared])["predict"].tolist() == _answer(runtime, raw, fast=False)[1]
    narrow = _body(rows[:, :2].tolist(), key=key)
    names, matrix = split_matrix(parse_json(narrow), narrow)
    assert runtime.prepare_rows(names, matrix) is None  # the frame path names the mismatch
    assert _answer(runtime, narrow, fast=True) == (
        "error",
        "InvalidInput: rows have 2 values; the model takes 3: ['a', 't', 'été']",
    )
