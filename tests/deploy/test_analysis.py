"""A/B analysis checked against scipy reference computations on the raw outcomes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from keel.deploy.analysis import ABConfig, analyse
from keel.errors import InvalidInput


def _aggregates(samples: dict[str, np.ndarray]) -> dict[str, tuple[int, float, float]]:
    return {k: (len(v), float(v.sum()), float((v * v).sum())) for k, v in samples.items()}


def test_binary_outcomes_match_scipys_chi_square_without_correction() -> None:
    rng = np.random.default_rng(1)
    a = (rng.random(800) < 0.10).astype(float)
    b = (rng.random(800) < 0.14).astype(float)
    result = analyse(
        "d", 2, ABConfig(min_samples=100), ["m/1", "m/2"], _aggregates({"m/1": a, "m/2": b})
    )
    table = [[a.sum(), len(a) - a.sum()], [b.sum(), len(b) - b.sum()]]
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    (comparison,) = result.comparisons
    assert comparison.test == "two-proportion z-test"
    assert comparison.statistic**2 == pytest.approx(chi2, rel=1e-9)
    assert comparison.p_value == pytest.approx(p, rel=1e-9)
    assert comparison.significant == bool(p < 0.05)


def test_continuous_outcomes_match_scipys_welch_t_test() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(10, 2, 300), rng.normal(10.6, 3, 250)
    config = ABConfig(outcome="continuous", min_samples=100)
    result = analyse("d", 2, config, ["m/1", "m/2"], _aggregates({"m/1": a, "m/2": b}))
    reference = stats.ttest_ind(b, a, equal_var=False)
    (comparison,) = result.comparisons
    assert comparison.test == "Welch t-test"
    assert -comparison.statistic == pytest.approx(reference.statistic, rel=1e-6)
    assert comparison.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert result.variants[1].std == pytest.approx(b.std(ddof=1), rel=1e-9)
    assert result.winner == "m/2"


def test_a_clear_loser_makes_the_control_the_winner_when_minimizing_flips_it() -> None:
    rng = np.random.default_rng(3)
    a = (rng.random(2000) < 0.30).astype(float)
    b = (rng.random(2000) < 0.10).astype(float)
    agg = _aggregates({"m/1": a, "m/2": b})
    assert analyse("d", 1, ABConfig(min_samples=10), ["m/1", "m/2"], agg).winner == "m/1"
    assert (
        analyse("d", 1, ABConfig(min_samples=10, goal="minimize"), ["m/1", "m/2"], agg).winner
        == "m/2"
    )


def test_no_difference_and_not_enough_data() -> None:
    same = np.array([0.0, 1.0] * 200)
    agg = _aggregates({"m/1": same, "m/2": same.copy()})
    result = analyse("d", 1, ABConfig(min_samples=100), ["m/1", "m/2"], agg)
    assert result.winner is None
    assert result.verdict == "no difference yet at alpha 0.05"
    short = analyse("d", 1, ABConfig(min_samples=1000), ["m/1", "m/2"], agg)
    assert short.verdict == "not enough data yet: m/1 400, m/2 400 of 1000 per variant"
    empty = analyse("d", 1, ABConfig(), ["m/1", "m/2"], {})
    assert empty.comparisons[0].p_value is None
    assert empty.variants[0].mean is None


def test_several_variants_split_alpha_bonferroni() -> None:
    config = ABConfig.parse({"weights": [40, 30, 30], "variants": ["models:/m/3"]})
    assert config.weights == (40, 30, 30)
    rng = np.random.default_rng(4)
    samples = {k: (rng.random(500) < 0.2).astype(float) for k in ("m/1", "m/2", "m/3")}
    result = analyse(
        "d",
        1,
        ABConfig(weights=(40, 30, 30), variants=("x",), min_samples=10),
        list(samples),
        _aggregates(samples),
    )
    assert len(result.comparisons) == 2
    for c in result.comparisons:
        assert c.significant == (c.p_value < 0.025)


@pytest.mark.parametrize(
    "config",
    [
        {"weights": [50, 40]},
        {"weights": [0, 100]},
        {"weights": "50,50"},
        {"weights": [50, 50, 0]},
        {"variants": "m/3"},
        {"variants": ["m/3"] * 9},
        {"sticky_key": ""},
        {"sticky_key": "k" * 129},
        {"alpha": 0},
        {"alpha": True},
        {"min_samples": 1},
        {"goal": "max"},
        {"nope": 1},
    ],
)
def test_bad_configuration_is_refused(config: dict) -> None:
    with pytest.raises(InvalidInput):
        ABConfig.parse(config)
