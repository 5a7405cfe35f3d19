"""Data quality of a window: missing values, out-of-range values, unseen categories, schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from keel.errors import InvalidInput
from keel.monitoring import profile, quality


@pytest.fixture
def ref() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.uniform(18, 90, 1000),
            "plan": rng.choice(["basic", "pro"], 1000),
            "visits": rng.integers(0, 10, 1000),
            "dropped": 1.0,
        }
    )


def _window() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [20.0, 17.0, 95.0, np.nan, np.inf, 50.0, np.nan, -np.inf],
            "plan": ["basic", "pro", "gold", "gold", None, "platinum", "basic", "pro"],
            "visits": [1.5, 2, 3, 4, 5, 6, 7, 8],  # int64 in the reference: a dtype change
            "new": 1,
        }
    )


@pytest.mark.parametrize("as_profile", [False, True])
def test_quality_counts_what_is_wrong(ref: pd.DataFrame, as_profile: bool) -> None:
    reference = profile(ref) if as_profile else ref
    report = quality(reference, _window())
    assert report.rows == 8
    assert report.missing_columns == ("dropped",)
    assert report.extra_columns == ("new",)
    assert report.type_changes == {}
    assert report.dtype_changes == {"visits": "int64 -> float64"}
    assert not report.schema_ok
    age = next(c for c in report.columns if c.column == "age")
    assert (age.missing, age.missing_rate) == (2, 0.25)
    assert age.out_of_range == 4  # 17, 95, +inf, -inf
    assert age.out_of_range_rate == 0.5
    plan = next(c for c in report.columns if c.column == "plan")
    assert plan.missing == 1
    assert plan.unseen == 3
    assert plan.unseen_examples == ("gold", "platinum")
    assert plan.unseen_exact
    assert plan.reference_missing_rate == 0.0
    json.loads(report.to_json())


def test_a_clean_window_has_no_findings(ref: pd.DataFrame) -> None:
    report = quality(ref, ref.sample(200, random_state=1))
    assert report.schema_ok
    assert all(c.missing == 0 and c.out_of_range == 0 and c.unseen == 0 for c in report.columns)


def test_type_changes_are_schema_violations(ref: pd.DataFrame) -> None:
    window = ref.assign(age=ref.age.astype(str), plan=pd.date_range("2026-01-01", periods=1000))
    report = quality(ref, window)
    assert report.type_changes == {
        "age": "number -> string",
        "plan": "string -> unsupported (unsupported dtype datetime64[us])",
    }
    assert not report.schema_ok


def test_an_all_missing_column_has_a_missing_rate_of_one(ref: pd.DataFrame) -> None:
    report = quality(ref, ref.assign(age=np.nan, plan=None))
    rates = {c.column: c.missing_rate for c in report.columns}
    assert rates["age"] == 1.0
    assert rates["plan"] == 1.0


def test_a_capped_profile_marks_unseen_counts_as_inexact() -> None:
    frame = pd.DataFrame({"c": [str(i) for i in range(100)]})
    report = quality(profile(frame, max_categories=10), pd.DataFrame({"c": ["5", "new"]}))
    assert report.columns[0].unseen_exact is False


def test_bad_input_is_invalid(ref: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="no rows"):
        quality(ref, ref.iloc[:0])
    with pytest.raises(InvalidInput, match="pass a pandas DataFrame"):
        quality(ref, {"age": [1]})
    with pytest.raises(InvalidInput, match="max_examples"):
        quality(ref, ref, max_examples=-1)
    with pytest.raises(InvalidInput, match="max_examples"):
        quality(ref, ref, max_examples=10**9)
