"""Signatures: inference from data, JSON round trips, and enforcement on model input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

from keel.errors import InvalidInput, SchemaError
from keel.registry.signature import (
    ColumnSpec,
    Schema,
    Signature,
    enforce_schema,
    infer_schema,
    infer_signature,
)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).data


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27], dtype="int64"),
            "score": np.array([0.5, 1.25, 3.0], dtype="float32"),
            "plan": ["basic", "pro", "basic"],
            "active": [True, False, True],
            "joined": pd.to_datetime(["2024-01-02", "2024-03-04", "2025-05-06"]),
            "region": pd.Categorical(["eu", "us", "eu"]),
        }
    )


def frame_schema(**dtypes: str) -> Schema:
    return Schema(tuple(ColumnSpec(n, d) for n, d in dtypes.items()), "dataframe")


# -- inference -----------------------------------------------------------------------------


def test_infer_dataframe_names_and_dtypes(mixed: pd.DataFrame) -> None:
    schema = infer_schema(mixed)
    assert schema.kind == "dataframe"
    assert schema.names == ("age", "score", "plan", "active", "joined", "region")
    assert [c.dtype for c in schema.columns] == [
        "int64",
        "float32",
        "string",
        "bool",
        "datetime",
        "category",
    ]
    assert not any(c.optional for c in schema.columns)


def test_infer_real_dataset(cancer: pd.DataFrame) -> None:
    schema = infer_schema(cancer)
    assert schema.names == tuple(cancer.columns)
    assert {c.dtype for c in schema.columns} == {"float64"}


def test_infer_marks_nullable_non_float_columns_optional() -> None:
    frame = pd.DataFrame(
        {
            "n": pd.array([1, None, 3], dtype="Int64"),
            "s": ["a", None, "c"],
            "x": [1.0, np.nan, 2.0],
        }
    )
    by_name = {c.name: c for c in infer_schema(frame).columns}
    assert by_name["n"] == ColumnSpec("n", "int64", optional=True)
    assert by_name["s"] == ColumnSpec("s", "string", optional=True)
    assert by_name["x"] == ColumnSpec("x", "float64")  # NaN is a float: nothing to mark


def test_infer_ndarray_has_variable_first_dim() -> None:
    schema = infer_schema(np.zeros((7, 4), dtype=np.float32))
    assert schema == Schema((ColumnSpec(None, "float32", (None, 4)),), "tensor")
    assert infer_schema(np.arange(3)).columns[0].shape == (None,)


def test_infer_series_records_and_column_dicts() -> None:
    assert infer_schema(pd.Series([1, 2], name="n")) == frame_schema(n="int64")
    assert infer_schema(pd.Series([1.5, 2.0])).kind == "tensor"
    records = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert infer_schema(records) == frame_schema(a="int64", b="string")
    assert infer_schema({"a": [1.0, 2.0], "b": ["x", "y"]}) == frame_schema(a="float64", b="string")


@pytest.mark.parametrize("data", [42, "text", object(), np.float64(1.0), []])
def test_infer_rejects_what_it_cannot_read(data: object) -> None:
    with pytest.raises(InvalidInput, match="cannot infer a schema"):
        infer_schema(data)


def test_infer_signature_with_and_without_output(cancer: pd.DataFrame) -> None:
    signature = infer_signature(cancer, np.zeros(len(cancer), dtype=np.int64))
    assert signature.outputs == Schema((ColumnSpec(None, "int64", (None,)),), "tensor")
    assert infer_signature(cancer).outputs is None


# -- serialisation -------------------------------------------------------------------------


def test_signature_round_trips_through_dict(mixed: pd.DataFrame) -> None:
    signature = infer_signature(mixed, np.zeros((3, 2), dtype=np.float32))
    data = signature.to_dict()
    assert data["outputs"]["columns"][0]["shape"] == [None, 2]
    assert Signature.from_dict(data) == signature


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("nope", "must be an object with 'inputs'"),
        ({"inputs": {"kind": "table", "columns": [{"name": "a", "dtype": "int64"}]}}, "kind"),
        ({"inputs": {"kind": "dataframe", "columns": []}}, "at least one column"),
        ({"inputs": {"kind": "dataframe", "columns": [{"name": "a", "dtype": "int"}]}}, "dtype"),
        ({"inputs": {"kind": "dataframe", "columns": "a"}}, "columns must be a list"),
        (
            {"inputs": {"kind": "tensor", "columns": [{"dtype": "float32", "shape": [-1]}]}},
            "non-negative",
        ),
        (
            {"inputs": {"kind": "dataframe", "columns": [{"name": "a", "dtype": "bool"}] * 2}},
            "unique",
        ),
        (
            {
                "inputs": {"kind": "dataframe", "columns": [{"name": "a", "dtype": "bool"}]},
                "outputs": {"kind": "tensor", "columns": [{"dtype": "bool", "optional": "no"}]},
            },
            "signature.outputs.columns",
        ),
    ],
)
def test_from_dict_rejects_malformed(bad: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Signature.from_dict(bad)


# -- dataframe enforcement -----------------------------------------------------------------


def test_exact_match_passes_through_reordered_and_trimmed(cancer: pd.DataFrame) -> None:
    schema = infer_schema(cancer)
    assert enforce_schema(cancer, schema) is cancer
    shuffled = cancer[list(reversed(cancer.columns))].assign(extra=1)
    out = enforce_schema(shuffled, schema)
    assert list(out.columns) == list(cancer.columns)
    pd.testing.assert_frame_equal(out, cancer)


def test_missing_column_lists_missing_and_expected(cancer: pd.DataFrame) -> None:
    schema = infer_schema(cancer)
    with pytest.raises(SchemaError) as caught:
        enforce_schema(cancer.drop(columns=["mean radius", "worst area"]), schema)
    message = str(caught.value)
    assert "missing column(s) ['mean radius', 'worst area']" in message
    assert "mean texture" in message  # expected columns are listed too


def test_string_in_float_column_names_column_and_dtypes() -> None:
    schema = frame_schema(x="float64", y="float64")
    with pytest.raises(SchemaError, match=r"column 'x': expected float64, found string"):
        enforce_schema(pd.DataFrame({"x": ["1.5", "abc"], "y": [1.0, 2.0]}), schema)
    mixed = pd.DataFrame({"x": [1.5, "abc"], "y": [1.0, 2.0]})
    with pytest.raises(SchemaError, match=r"column 'x'.*found object \(e\.g\. 'abc'\)"):
        enforce_schema(mixed, schema)


def test_fractional_float_into_int_column_fails_whole_floats_pass() -> None:
    schema = frame_schema(n="int64")
    with pytest.raises(SchemaError, match=r"column 'n': expected int64.*fractional.*1\.5"):
        enforce_schema(pd.DataFrame({"n": [1.0, 1.5]}), schema)
    out = enforce_schema(pd.DataFrame({"n": [1.0, 2.0]}), schema)
    assert out["n"].dtype == np.int64
    assert out["n"].tolist() == [1, 2]


def test_nulls_in_non_optional_int_column_fail() -> None:
    with pytest.raises(SchemaError, match=r"column 'n'.*1 null value"):
        enforce_schema(pd.DataFrame({"n": [1.0, np.nan]}), frame_schema(n="int64"))
    schema = Schema((ColumnSpec("n", "int64", optional=True),), "dataframe")
    out = enforce_schema(pd.DataFrame({"n": [1.0, np.nan]}), schema)
    assert str(out["n"].dtype) == "Int64"
    assert out["n"].isna().tolist() == [False, True]


def test_optional_column_may_be_absent() -> None:
    schema = Schema(
        (ColumnSpec("a", "float64"), ColumnSpec("b", "int32", optional=True)), "dataframe"
    )
    out = enforce_schema({"a": [1.0, 2.0]}, schema)
    assert list(out.columns) == ["a", "b"]
    assert out["b"].isna().all()
    assert str(out["b"].dtype) == "Int32"


@pytest.mark.parametrize(
    ("values", "target"),
    [
        (np.array([1, 2], dtype="int32"), "int64"),
        (np.array([1, 2], dtype="int64"), "float64"),
        (np.array([1.5, 2.5], dtype="float32"), "float64"),
        (np.array([1.5, 2.5], dtype="float64"), "float32"),
        (np.array([1, 2], dtype="int64"), "int8"),
        (np.array([1, 2], dtype="uint8"), "int16"),
        (pd.array([1, 2], dtype="Int64"), "int64"),
    ],
)
def test_safe_casts_succeed(values: object, target: str) -> None:
    out = enforce_schema(pd.DataFrame({"v": values}), frame_schema(v=target))
    assert out["v"].dtype == np.dtype(target)
    assert out["v"].tolist() == list(values)


@pytest.mark.parametrize(
    ("values", "target", "match"),
    [
        ([True, False], "int64", "expected int64, found bool"),
        ([True, False], "float64", "expected float64, found bool"),
        ([1, 2], "bool", "expected bool, found int64"),
        ([300, 1], "int8", "out of range"),
        ([1, 2], "string", "expected string, found int64"),
    ],
)
def test_unsafe_casts_fail(values: list[object], target: str, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        enforce_schema(pd.DataFrame({"v": values}), frame_schema(v=target))


def test_all_column_problems_reported_at_once() -> None:
    schema = frame_schema(a="int64", b="float64")
    with pytest.raises(SchemaError, match=r"column 'a'.*; column 'b'"):
        enforce_schema(pd.DataFrame({"a": [0.5], "b": ["x"]}), schema)


def test_other_input_shapes_for_a_dataframe_schema() -> None:
    schema = frame_schema(a="float64", b="string")
    expected = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    for data in (
        [{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}],
        {"a": [1.0, 2.0], "b": ["x", "y"]},
        [[1.0, "x"], [2.0, "y"]],
    ):
        pd.testing.assert_frame_equal(enforce_schema(data, schema), expected, check_dtype=False)
    one = enforce_schema({"a": 3, "b": "z"}, schema)
    assert one.to_dict("list") == {"a": [3.0], "b": ["z"]}


def test_ndarray_for_dataframe_schema_is_assigned_in_order(cancer: pd.DataFrame) -> None:
    schema = infer_schema(cancer)
    out = enforce_schema(cancer.to_numpy()[:5], schema)
    pd.testing.assert_frame_equal(out, cancer.iloc[:5].reset_index(drop=True))


def test_wrong_ndarray_width_fails(cancer: pd.DataFrame) -> None:
    schema = infer_schema(cancer)
    with pytest.raises(SchemaError, match="has 4 columns; the model expects 30"):
        enforce_schema(np.zeros((2, 4)), schema)
    with pytest.raises(SchemaError, match="has 1 columns; the model expects 30"):
        enforce_schema([[1.0], [2.0]], schema)


def test_none_input_fails_for_both_kinds(cancer: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match="input is None; the model expects columns"):
        enforce_schema(None, infer_schema(cancer))
    with pytest.raises(SchemaError, match="expects a float32 array of shape"):
        enforce_schema(None, infer_schema(np.zeros((1, 3), dtype=np.float32)))


def test_empty_input_returns_empty_with_schema_dtypes(mixed: pd.DataFrame) -> None:
    schema = infer_schema(mixed)
    for empty in (mixed.iloc[:0], pd.DataFrame(), [], {}):
        out = enforce_schema(empty, schema)
        assert len(out) == 0
        assert list(out.columns) == list(schema.names)
    assert enforce_schema([], schema)["age"].dtype == np.int64


def test_datetime_strings_are_parsed_garbage_is_not() -> None:
    schema = frame_schema(t="datetime")
    out = enforce_schema({"t": ["2024-01-02", "2024-01-03T10:00:00"]}, schema)
    assert pd.api.types.is_datetime64_any_dtype(out["t"])
    with pytest.raises(SchemaError, match=r"column 't'.*unparseable.*'soon'"):
        enforce_schema({"t": ["2024-01-02", "soon"]}, schema)


def test_unreadable_input_type_fails() -> None:
    with pytest.raises(SchemaError, match="cannot read int as a table"):
        enforce_schema(42, frame_schema(a="int64"))


# -- tensor enforcement --------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_tensor() -> Schema:
    return infer_schema(load_iris().data.astype(np.float32))


def test_tensor_safe_casts_and_shape(iris_tensor: Schema) -> None:
    out = enforce_schema(load_iris().data, iris_tensor)  # float64 → float32
    assert out.dtype == np.float32
    assert out.shape == (150, 4)
    ints = enforce_schema([[1, 2, 3, 4]], iris_tensor)
    assert ints.dtype == np.float32


def test_tensor_wrong_width_or_rank_fails(iris_tensor: Schema) -> None:
    with pytest.raises(SchemaError, match=r"shape \(2, 3\); the model expects \(None, 4\)"):
        enforce_schema(np.zeros((2, 3)), iris_tensor)
    with pytest.raises(SchemaError, match=r"reshape"):
        enforce_schema(np.zeros(4), iris_tensor)


def test_tensor_dtype_mismatch_fails(iris_tensor: Schema) -> None:
    with pytest.raises(SchemaError, match="expected float32, found string"):
        enforce_schema(np.array([["a", "b", "c", "d"]]), iris_tensor)
    int_schema = Schema((ColumnSpec(None, "int64", (None,)),), "tensor")
    with pytest.raises(SchemaError, match="fractional"):
        enforce_schema(np.array([0.5]), int_schema)
    assert enforce_schema(np.array([2.0]), int_schema).dtype == np.int64


def test_dataframe_into_tensor_schema(iris_tensor: Schema) -> None:
    frame = load_iris(as_frame=True).data
    out = enforce_schema(frame, iris_tensor)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    with pytest.raises(SchemaError, match="has 2 columns; the model expects 4"):
        enforce_schema(frame.iloc[:, :2], iris_tensor)


def test_empty_tensor_input(iris_tensor: Schema) -> None:
    out = enforce_schema([], iris_tensor)
    assert out.shape == (0, 4)
    assert out.dtype == np.float32
