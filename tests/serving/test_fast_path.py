"""The numeric block fast path answers exactly as the DataFrame path does."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from serving_support import Registered, register

from keel.errors import InvalidInput
from keel.serving.mlflow_formats import frame_of, split_matrix
from keel.serving.runtime import load_runtime


@pytest.fixture
def array_fitted(keel_env: Any) -> Registered:
    """A scaler + logistic regression fitted on an array, logged with named columns."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(data.data, data.target)
    X = pd.DataFrame(data.data, columns=[str(n) for n in data.feature_names])
    return Registered(register(model, X, "cancer-array"), model, X, data.target)


def _split(frame: pd.DataFrame) -> Any:
    body = {"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}
    return orjson.loads(orjson.dumps(body))


@pytest.mark.parametrize("which", ["array_fitted", "classifier"])
def test_block_answers_as_the_frame(which: str, request: pytest.FixtureRequest) -> None:
    model: Registered = request.getfixturevalue(which)
    runtime = load_runtime(model.uri)
    runtime.warm()
    frame = model.X.iloc[:57]
    doc = _split(frame[list(frame.columns)[::-1]])  # columns in another order
    names, matrix = split_matrix(doc)
    fast = runtime.prepare_rows(names, matrix)
    assert fast is not None
    assert fast.block is not None
    slow = runtime.prepare_frame(frame_of(doc))
    assert slow.block is None
    got = runtime.run([fast])["predict"]
    assert np.array_equal(got, runtime.run([slow])["predict"])
    named = getattr(model.estimator, "feature_names_in_", None) is not None
    own = model.estimator.predict(frame if named else frame.to_numpy())
    assert np.array_equal(got, own)
    merged = runtime.run([fast, slow, fast])["predict"]  # mixed batches go the DataFrame way
    assert np.array_equal(merged, np.concatenate([got, got, got]))


def test_block_refuses_nan_like_the_frame(array_fitted: Registered) -> None:
    runtime = load_runtime(array_fitted.uri)
    frame = array_fitted.X.iloc[:3].copy()
    frame.iloc[1, 4] = np.nan
    with pytest.raises(InvalidInput) as fast:
        runtime.prepare_rows(list(frame.columns), frame.to_numpy())
    with pytest.raises(InvalidInput) as slow:
        runtime.prepare_frame(frame)
    assert str(fast.value) == str(slow.value)
    assert repr(frame.columns[4]) in str(fast.value)


def _split_body(columns: list[str], rows: list[Any]) -> tuple[Any, bytes]:
    raw = orjson.dumps({"dataframe_split": {"columns": columns, "data": rows}})
    return orjson.loads(raw), raw


@pytest.mark.parametrize("with_raw", [True, False], ids=["bytes", "values"])
@pytest.mark.parametrize(
    "rows",
    [
        [[1.0, True]],  # booleans would turn into numbers
        [[1, False]],
        [[1.0, None]],
        [[1.0, "2"]],
        [[1.0, 2.0], [3.0]],
        [[1.0, 2.0**60]],  # beyond 2**53 an integer may round as a float: the frame decides
        [],
    ],
)
def test_split_matrix_leaves_anything_else_to_the_frame(rows: list[Any], with_raw: bool) -> None:
    doc, raw = _split_body(["a", "b"], rows)
    assert split_matrix(doc, raw if with_raw else None) is None


@pytest.mark.parametrize(
    "columns",
    [["t", "a"], ["true", "false"], ["data", "\u00e9t\u00e9"]],
)
def test_letters_of_true_and_false_in_names_are_not_booleans(columns: list[str]) -> None:
    doc, raw = _split_body(columns, [[1.5, 2.0], [3.0, 4.25]])
    names, matrix = split_matrix(doc, raw)
    assert names == columns
    assert matrix.tolist() == [[1.5, 2.0], [3.0, 4.25]]
    doc, raw = _split_body(columns, [[1.5, True]])
    assert split_matrix(doc, raw) is None


def test_an_escaped_name_is_left_to_the_frame() -> None:
    doc, raw = _split_body(["a\tb", "c"], [[1.0, 2.0]])  # the escape could hide a letter
    assert split_matrix(doc, raw) is None
    assert split_matrix(doc) is not None  # the value-by-value check is exact


def test_ints_mixed_with_floats_answer_as_the_frame(array_fitted: Registered) -> None:
    runtime = load_runtime(array_fitted.uri)
    runtime.warm()
    frame = array_fitted.X.iloc[:20].round(0)  # whole numbers, written as ints in places
    rows = [[int(v) if j % 3 == 0 else v for j, v in enumerate(r)] for r in frame.values.tolist()]
    doc, raw = _split_body(list(frame.columns), rows)
    names, matrix = split_matrix(doc, raw)
    assert matrix.dtype == np.float64
    fast = runtime.prepare_rows(names, matrix)
    assert fast is not None
    slow = runtime.prepare_frame(frame_of(doc))
    assert frame_of(doc).dtypes.iloc[0] == np.int64  # the frame really saw integers there
    assert np.array_equal(runtime.run([fast])["predict"], runtime.run([slow])["predict"])


def test_split_matrix_needs_a_plain_split() -> None:
    data = {"columns": ["a"], "data": [[1.0]]}
    assert split_matrix({"dataframe_split": data})[1].dtype == np.float64
    assert split_matrix({"dataframe_split": {"columns": ["a"], "data": [[3]]}})[1].dtype.kind == "i"
    assert split_matrix({"dataframe_split": {**data, "index": [7]}}) is None
    assert split_matrix({"dataframe_split": data, "extra": 1}) is None
    assert split_matrix({"instances": [[1.0]]})[0] is None  # positional rows: no names
    assert split_matrix({"instances": [{"a": 1.0}]}) is None  # records: the frame reads them
