"""Every drift statistic against scipy's reference implementation (to 1e-9), PSI by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp
from scipy.spatial.distance import jensenshannon

from keel.monitoring import drift
from keel.monitoring import stats as ks_stats

TOL = 1e-9

SIZES = [(1, 1), (1, 7), (5, 7), (100, 100), (999, 1234), (3000, 7), (12_000, 15_000)]


@pytest.mark.parametrize(("n", "m"), SIZES)
def test_wasserstein_matches_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 31 + m)
    a = np.sort(rng.normal(size=n))
    b = np.sort(rng.gamma(2.0, size=m))
    expected = sp.wasserstein_distance(a, b)
    assert ks_stats.wasserstein(a, b) == pytest.approx(expected, abs=TOL, rel=TOL)


def test_wasserstein_with_ties_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    a = np.sort(rng.integers(0, 4, 301).astype(float))
    b = np.sort(rng.integers(1, 6, 177).astype(float))
    assert ks_stats.wasserstein(a, b) == pytest.approx(sp.wasserstein_distance(a, b), abs=TOL)


def test_drift_wasserstein_is_scipy_over_reference_std() -> None:
    rng = np.random.default_rng(11)
    ref = pd.DataFrame({"v": rng.normal(2, 3, 5000)})
    cur = pd.DataFrame({"v": rng.normal(2.5, 3, 3333)})
    result = drift(ref, cur).column("v")
    assert result.method == "wasserstein"
    expected = sp.wasserstein_distance(ref.v, cur.v) / np.std(ref.v)
    assert result.statistic == pytest.approx(expected, abs=TOL, rel=TOL)
    assert result.p_value is None


@pytest.mark.parametrize(("n", "m"), [(20, 30), (500, 700), (900, 12_000), (1000, 1000)])
def test_drift_ks_matches_scipy(n: int, m: int) -> None:
    rng = np.random.default_rng(n + m)
    ref = pd.DataFrame({"v": rng.normal(0, 1, n)})
    cur = pd.DataFrame({"v": rng.normal(0.1, 1.1, m)})
    result = drift(ref, cur, methods={"v": "ks"}).column("v")
    expected = sp.ks_2samp(ref.v, cur.v)
    assert result.statistic == pytest.approx(expected.statistic, abs=TOL)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOL, rel=TOL)


def test_ks_is_chosen_for_small_numeric_samples(small_ref: pd.DataFrame) -> None:
    cur = small_ref.sample(frac=0.7, random_state=0)
    result = drift(small_ref, cur).column("x")
    assert result.method == "ks"
    assert result.p_value == pytest.approx(sp.ks_2samp(small_ref.x, cur.x).pvalue, abs=TOL)


def test_drift_chisquare_matches_chi2_contingency() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"c": rng.choice(list("abcd"), 600, p=[0.4, 0.3, 0.2, 0.1])})
    cur = pd.DataFrame({"c": rng.choice(list("abcde"), 450, p=[0.3, 0.3, 0.2, 0.1, 0.1])})
    result = drift(ref, cur).column("c")
    assert result.method == "chisquare"
    cats = sorted(set(ref.c) | set(cur.c))
    table = np.array(
        [[(ref.c == k).sum() for k in cats], [(cur.c == k).sum() for k in cats]], dtype=float
    )
    expected = sp.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(expected.statistic, abs=TOL, rel=TOL)
    assert result.p_value == pytest.approx(expected.pvalue, abs=TOL, rel=TOL)


def test_drift_jensenshannon_matches_scipy() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"c": rng.choice(list("abc"), 5000, p=[0.5, 0.3, 0.2])})
    cur = pd.DataFrame({"c": rng.choice(list("abcz"), 4000, p=[0.2, 0.3, 0.3, 0.2])})
    result = drift(ref, cur).column("c")
    assert result.method == "jensenshannon"
    cats = sorted(set(ref.c) | set(cur.c))
    p = np.array([(ref.c == k).mean() for k in cats])
    q = np.array([(cur.c == k).mean() for k in cats])
    assert result.statistic == pytest.approx(jensenshannon(p, q), abs=TOL)


def test_jensenshannon_of_numbers_uses_the_reference_bins() -> None:
    rng = np.random.default_rng(8)
    ref = pd.DataFrame({"v": rng.uniform(0, 10, 4000)})
    cur = pd.DataFrame({"v": rng.uniform(5, 15, 3000)})  # half outside the reference range
    result = drift(ref, cur, methods={"v": "jensenshannon"}, bins=10).column("v")
    lo, hi = ref.v.min(), ref.v.max()
    edges = np.linspace(lo, hi, 11)

    def counts(values: pd.Series) -> np.ndarray:
        inside = np.histogram(values[(values >= lo) & (values <= hi)], bins=edges)[0]
        return np.r_[(values < lo).sum(), inside, (values > hi).sum()]

    p, q = counts(ref.v), counts(cur.v)
    assert p[0] == p[-1] == 0
    assert q[-1] > 1000
    assert result.statistic == pytest.approx(jensenshannon(p / p.sum(), q / q.sum()), abs=TOL)
    assert result.distribution is not None
    assert result.distribution.current == tuple(int(v) for v in q)


def test_psi_by_hand_on_a_tiny_example() -> None:
    ref = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 3 + ["c"] * 2})
    cur = pd.DataFrame({"c": ["a"] * 2 + ["b"] * 3 + ["c"] * 5})
    result = drift(ref, cur, methods={"c": "psi"}).column("c")
    p, q = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
    by_hand = sum((qi - pi) * math.log(qi / pi) for pi, qi in zip(p, q, strict=True))
    assert by_hand == pytest.approx(0.6 * math.log(2.5), abs=1e-12)  # (0.3·ln 2.5) twice
    assert result.statistic == pytest.approx(by_hand, abs=1e-12)
    assert result.drifted  # >= 0.1


def test_psi_floors_an_empty_bucket_instead_of_going_infinite() -> None:
    ref = pd.DataFrame({"c": ["a"] * 10})
    cur = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 5})
    result = drift(ref, cur, methods={"c": "psi"}).column("c")
    eps = ks_stats.PSI_EPSILON
    by_hand = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - eps) * math.log(0.5 / eps)
    assert result.statistic == pytest.approx(by_hand, abs=1e-12)


def test_chi_square_with_one_category_is_zero_with_p_one() -> None:
    assert ks_stats.chi_square(np.array([5]), np.array([9])) == (0.0, 1.0)


def test_identical_samples_have_zero_distances() -> None:
    values = np.sort(np.random.default_rng(0).normal(size=2000))
    assert ks_stats.wasserstein(values, values) == 0.0
    counts = np.array([3, 4, 5])
    assert ks_stats.jensen_shannon(counts, counts) == 0.0
    assert ks_stats.psi(counts, counts) == 0.0


def test_profile_ks_is_close_to_the_exact_statistic() -> None:
    rng = np.random.default_rng(9)
    ref = np.sort(rng.normal(size=50_000))
    cur = np.sort(rng.normal(0.05, 1, size=20_000))
    quantiles = ks_stats.quantiles_of_sorted(ref, np.linspace(0, 1, 201))
    d, p = ks_stats.ks_from_quantiles(quantiles, len(ref), cur)
    exact = sp.ks_2samp(ref, cur)
    assert abs(d - exact.statistic) <= 1 / 200
    assert 0.0 <= p <= 1.0


STD_SIZES = [1, 2, ks_stats._STD_BLOCK - 1, ks_stats._STD_BLOCK, 3 * ks_stats._STD_BLOCK + 5]


@pytest.mark.parametrize("n", STD_SIZES)
def test_population_std_over_its_blocks_is_numpy_std(n: int) -> None:
    values = np.random.default_rng(n).normal(-4e5, 7.0, n)
    mean = float(np.mean(values))
    assert ks_stats.population_std(values, mean) == pytest.approx(
        float(np.std(values)), rel=1e-12, abs=1e-300
    )


@pytest.mark.parametrize("n", [0, 1, 2, ks_stats.BLOCK, ks_stats.BLOCK + 1, 2 * ks_stats.BLOCK + 7])
def test_distinct_count_of_a_sorted_column_over_blocks_is_numpy_unique(n: int) -> None:
    from keel.monitoring._profile import _distinct_sorted

    values = np.sort(np.random.default_rng(n).integers(0, max(n // 3, 1), n).astype(float))
    if n > ks_stats.BLOCK:  # a run of equal values across a block boundary counts once
        values[ks_stats.BLOCK - 2 : ks_stats.BLOCK + 2] = values[ks_stats.BLOCK - 2]
        values.sort()
    assert _distinct_sorted(values) == len(np.unique(values))
