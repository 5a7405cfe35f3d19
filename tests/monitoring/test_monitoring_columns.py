"""The per-column passes drift runs on: each gives what the plain numpy/pandas call gives,
while leaving the caller's frame untouched (they sort copies and count without codes)."""

from __future__ import annotations

import decimal

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

from keel.monitoring import _buckets, _frames, _profile, drift
from keel.monitoring import stats as ks_stats
from keel.monitoring._frames import BOOL, STRING, categories, classify, numeric_values

NASTY = [3.0, np.nan, -np.inf, 1.5, np.inf, -0.0, np.nan, 2.0, np.inf, -7.25, 0.0]


@pytest.mark.parametrize(
    "series",
    [
        pd.Series(NASTY),
        pd.Series(NASTY, dtype="float32"),
        pd.Series(NASTY, dtype="Float64"),
        pd.Series(NASTY, dtype="double[pyarrow]"),
        pd.Series(
            [None if isinstance(v, float) and np.isnan(v) else v for v in NASTY], dtype=object
        ),
    ],
    ids=["float64", "float32", "Float64", "arrow", "object"],
)
def test_numeric_values_are_the_sorted_finite_values_and_the_counts(series: pd.Series) -> None:
    before = series.copy()
    numbers = numeric_values(series)
    raw = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = raw[np.isfinite(raw)]
    np.testing.assert_array_equal(numbers.sorted, np.sort(finite))
    assert numbers.missing == 2
    assert numbers.non_finite == 3
    pd.testing.assert_series_equal(series, before)  # sorted a copy, not the column


@pytest.mark.parametrize("dtype", ["int64", "int32", "Int64", "int64[pyarrow]", "double[pyarrow]"])
def test_numeric_values_of_converted_columns_leave_the_column_as_it_was(dtype: str) -> None:
    values = np.random.default_rng(3).integers(-50, 50, 1000)
    frame = pd.DataFrame({"v": pd.Series(values, dtype=dtype)})
    numbers = numeric_values(frame["v"])
    np.testing.assert_array_equal(numbers.sorted, np.sort(values.astype(np.float64)))
    np.testing.assert_array_equal(frame["v"].to_numpy(dtype=np.float64), values)


def test_a_column_with_no_finite_value_has_an_empty_sorted_array() -> None:
    numbers = numeric_values(pd.Series([np.nan, np.inf, -np.inf, np.nan]))
    assert len(numbers.sorted) == 0
    assert (numbers.missing, numbers.non_finite) == (2, 2)


@pytest.mark.parametrize("distinct", [5, 40_000], ids=["few-values", "mostly-distinct"])
def test_categories_count_what_factorize_counts_in_first_seen_order(distinct: int) -> None:
    rng = np.random.default_rng(distinct)
    words = np.array([f"w{i}" for i in range(distinct)] + [None], dtype=object)
    series = pd.Series(words[rng.integers(0, distinct + 1, 20_000)], dtype=object)
    series.iloc[7] = np.nan
    fam, _, counted = classify(series)
    assert fam == STRING
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    assert list(counted.values) == list(uniques)
    np.testing.assert_array_equal(counted.counts, np.bincount(codes[codes >= 0]))
    assert counted.missing == int(np.count_nonzero(codes < 0)) > 0


@pytest.mark.parametrize("dtype", [bool, "boolean", object])
def test_bool_categories_are_python_bools_with_counts(dtype: object) -> None:
    values = [True, False, True, True] if dtype is not object else [True, None, False, True]
    cats = categories(pd.Series(values, dtype=dtype), BOOL)
    counts = dict(zip(cats.values, cats.counts, strict=True))
    assert all(type(v) is bool for v in cats.values)
    assert counts == ({True: 3, False: 1} if dtype is not object else {True: 2, False: 1})
    assert cats.missing == (0 if dtype is not object else 1)


@pytest.mark.parametrize("n", [1, 2, ks_stats.BLOCK - 1, ks_stats.BLOCK, 2 * ks_stats.BLOCK + 3])
def test_blockwise_std_is_numpy_std(n: int) -> None:
    values = np.sort(np.random.default_rng(n).normal(1e6, 3.0, n))
    mean = float(np.mean(values))
    assert ks_stats.population_std(values, mean) == pytest.approx(
        float(np.std(values)), rel=1e-12, abs=0
    )


def test_std_of_values_whose_squares_overflow_is_still_finite() -> None:
    frame = pd.DataFrame({"v": np.linspace(-1.0, 1.0, 2001) * 1.7e308})
    std = _profile.profile(frame).columns["v"].numeric.std
    assert np.isfinite(std)
    assert std == pytest.approx(float(np.std(frame["v"].to_numpy() / 1.7e308)) * 1.7e308, rel=1e-9)


@pytest.mark.parametrize("n", [1, 17, 5000])
def test_wasserstein_written_over_the_current_sample_is_the_same_distance(n: int) -> None:
    rng = np.random.default_rng(n)
    a, b = np.sort(rng.normal(size=n)), np.sort(rng.gamma(2.0, size=n))
    kept = b.copy()
    expected = sp.wasserstein_distance(a, b)
    assert ks_stats.wasserstein(a, b) == pytest.approx(expected, abs=1e-9, rel=1e-9)
    np.testing.assert_array_equal(b, kept)  # without overwrite_cur, b is left alone
    assert ks_stats.wasserstein(a, b, overwrite_cur=True) == ks_stats.wasserstein(a, kept)


def test_drift_leaves_both_frames_as_they_were() -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=3000),
            "k": rng.integers(0, 9, 3000),
            "s": rng.choice(["u", "v"], 3000),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(size=3000),
            "k": rng.integers(0, 9, 3000),
            "s": rng.choice(["u", "w"], 3000),
        }
    )
    ref.loc[5, "x"], cur.loc[6, "x"] = np.nan, np.inf
    ref_copy, cur_copy = ref.copy(), cur.copy()
    report = drift(ref, cur)
    assert report.column("x").method == "wasserstein"
    pd.testing.assert_frame_equal(ref, ref_copy)
    pd.testing.assert_frame_equal(cur, cur_copy)


@pytest.mark.parametrize(
    ("n", "m"),
    [(70_001, 50_000), (3, 100_000), (100_000, 2), (65_536, 65_535), (40_000, 60_000)],
)
def test_wasserstein_walked_in_spans_matches_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + 7 * m)
    a = np.sort(rng.normal(size=n))
    b = np.sort(np.round(rng.gamma(2.0, size=m), 2))  # ties in one sample
    expected = sp.wasserstein_distance(a, b)
    assert ks_stats.wasserstein(a, b) == pytest.approx(expected, abs=1e-9, rel=1e-9)
    assert ks_stats.wasserstein(b, a) == pytest.approx(expected, abs=1e-9, rel=1e-9)


AWKWARD_OBJECTS = [
    ["x", "y", "x", None, np.nan, float("nan"), pd.NA, pd.NaT, "y", "x"],
    [True, 1, 1.0, "a", None, False, 0],  # equal hashes and values count as one, as in pandas
    [0.0, -0.0, 1, 2, 2.0],
    [b"a", "a", (1, 2), (1, 2), decimal.Decimal("1.5"), decimal.Decimal("NaN")],
    [None, None],
]


@pytest.mark.parametrize("values", AWKWARD_OBJECTS)
@pytest.mark.parametrize("in_a_dict", [True, False])
def test_object_columns_are_counted_as_pandas_counts_them(
    monkeypatch: pytest.MonkeyPatch, values: list[object], in_a_dict: bool
) -> None:
    if not in_a_dict:
        monkeypatch.setattr(_frames, "_DICT_ROWS", 0)
    series = pd.Series(values * 3, dtype=object)
    counted = _frames._counted_values(series)
    expected = series.value_counts(sort=False, dropna=True)
    assert list(counted.index) == list(expected.index)
    assert [type(v) for v in counted.index] == [type(v) for v in expected.index]
    np.testing.assert_array_equal(counted.to_numpy(), expected.to_numpy())


@pytest.mark.parametrize("in_a_dict", [True, False])
def test_current_categories_find_their_reference_place(
    monkeypatch: pytest.MonkeyPatch, in_a_dict: bool
) -> None:
    if not in_a_dict:
        monkeypatch.setattr(_buckets, "_DICT_LOOKUP", 0)
    ref = pd.Index(["a", "b", True, 2, (1, 2), b"a"], dtype=object)
    cur = pd.Index(["b", "new", 1, 2.0, (1, 2), "a", b"z"], dtype=object)
    np.testing.assert_array_equal(_buckets._positions(ref, cur), ref.get_indexer(cur))
    numbers = pd.Index([0.0, 1.5, 3.0])
    found = _buckets._positions(numbers, pd.Index([3.0, -0.0, 7.0]))
    np.testing.assert_array_equal(found, [2, 0, -1])
