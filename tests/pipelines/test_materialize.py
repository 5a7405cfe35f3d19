"""Step outputs stored by type and read back verified."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keel.errors import IntegrityError, InvalidInput
from keel.pipelines.errors import StepFailed
from keel.pipelines.materialize import OutputRef, load_output, store_output
from keel.store.artifacts import ArtifactStore


@dataclass(frozen=True)
class Point:
    x: int
    y: int


@pytest.fixture
def blobs(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "store"))


def roundtrip(value: object, blobs: ArtifactStore) -> tuple[OutputRef, object]:
    ref = store_output(value, blobs, "s")
    again = OutputRef.from_json(ref.to_json())
    assert again == ref
    return ref, load_output(again, blobs)


@pytest.mark.parametrize(
    "value", [None, True, 0, -(2**63), 2**64 - 1, 1.5, "é", [1, [2, {"a": None}]], {"k": [1.0]}]
)
def test_json_values_are_stored_as_json(value: object, blobs: ArtifactStore) -> None:
    ref, back = roundtrip(value, blobs)
    assert ref.kind == "json"
    assert back == value
    assert type(back) is type(value)


@pytest.mark.parametrize(
    "value", [(1, 2), [1, (2, 3)], 2**80, float("nan"), Point(1, 2), {1: "x"}, {"a", "b"}]
)
def test_values_json_would_change_use_the_pickle_fallback(
    value: object, blobs: ArtifactStore
) -> None:
    ref, back = roundtrip(value, blobs)
    assert ref.kind == "pickle"
    if value == value:  # NaN is not equal to itself
        assert back == value
        assert type(back) is type(value)


def test_lambdas_and_closures_are_stored_by_cloudpickle(blobs: ArtifactStore) -> None:
    offset = 5
    ref, back = roundtrip(lambda x: x + offset, blobs)
    assert ref.kind == "pickle"
    assert back(1) == 6  # type: ignore[operator]


def test_dataframes_series_and_arrow_tables_are_parquet(blobs: ArtifactStore) -> None:
    frame = pd.DataFrame(
        {"a": [1, 2, 3], "b": ["x", None, "z"], "t": pd.to_datetime(["2024-01-01"] * 3)},
        index=pd.Index(["p", "q", "r"], name="key"),
    )
    ref, back = roundtrip(frame, blobs)
    assert (ref.kind, ref.meta["rows"]) == ("parquet", 3)
    pd.testing.assert_frame_equal(back, frame)  # type: ignore[arg-type]

    series = pd.Series([1.5, 2.5], name="price")
    ref, back = roundtrip(series, blobs)
    assert ref.kind == "parquet"
    pd.testing.assert_series_equal(back, series)  # type: ignore[arg-type]

    table = pa.table({"n": [1, 2]})
    ref, back = roundtrip(table, blobs)
    assert ref.kind == "parquet"
    assert back.equals(table)  # type: ignore[union-attr]


def test_frames_parquet_cannot_hold_exactly_fall_back(blobs: ArtifactStore) -> None:
    numbered = pd.DataFrame({0: [1], 1: [2]})  # integer column labels
    ref, back = roundtrip(numbered, blobs)
    assert ref.kind == "pickle"
    pd.testing.assert_frame_equal(back, numbered)  # type: ignore[arg-type]
    mixed = pd.DataFrame({"m": [1, "two", 3.0]})  # Arrow has no mixed-type column
    ref, back = roundtrip(mixed, blobs)
    assert ref.kind == "pickle"
    assert list(back["m"]) == [1, "two", 3.0]  # type: ignore[index]


def test_arrays_are_npy_and_object_arrays_pickle(blobs: ArtifactStore) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    ref, back = roundtrip(array, blobs)
    assert (ref.kind, ref.meta) == ("npy", {"shape": [3, 4], "dtype": "float32"})
    np.testing.assert_array_equal(back, array)  # type: ignore[arg-type]
    assert back.dtype == np.float32  # type: ignore[union-attr]
    ref, back = roundtrip(np.array([{"a": 1}, None], dtype=object), blobs)
    assert ref.kind == "pickle"
    ref, back = roundtrip(np.float64(2.5), blobs)
    assert ref.kind == "pickle"
    assert back == 2.5


def test_estimators_go_through_their_registry_flavor(blobs: ArtifactStore) -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    ref, back = roundtrip(model, blobs)
    assert (ref.kind, ref.meta) == ("model", {"flavor": "sklearn"})
    assert ref.type == "sklearn.linear_model._logistic.LogisticRegression"
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))  # type: ignore[union-attr]


def test_what_nothing_can_store_fails_naming_the_step(blobs: ArtifactStore) -> None:
    for value in ((i for i in range(3)), threading.Lock()):
        with pytest.raises(
            StepFailed, match=r"step 'train' failed: its output, a .* cannot be stored"
        ):
            store_output(value, blobs, "train")


def test_a_corrupted_output_is_never_decoded(blobs: ArtifactStore, tmp_path: Path) -> None:
    ref = store_output(Point(1, 2), blobs, "s")
    blob = next((tmp_path / "store" / "blobs").rglob(ref.digest))
    blob.write_bytes(b"\x80\x04 tampered")
    with pytest.raises(IntegrityError, match="corrupted"):
        load_output(ref, blobs)
    blob.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        load_output(ref, blobs)


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"digest": "x"}', '{"digest":"a","size":"big","kind":"json","type":"int"}',
     '{"digest":"a","size":1,"kind":"exe","type":"int"}'],
)  # fmt: skip
def test_malformed_output_records_are_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput, match="step output record"):
        OutputRef.from_json(text)


def test_a_huge_output_round_trips(blobs: ArtifactStore) -> None:
    big = np.random.default_rng(0).normal(size=(3_000_000,))  # 24 MB
    ref, back = roundtrip(big, blobs)
    assert ref.size > 24_000_000
    np.testing.assert_array_equal(back, big)  # type: ignore[arg-type]
