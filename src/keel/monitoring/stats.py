"""The drift statistics, each over prepared arrays: sorted samples, or aligned counts.

Every function is vectorised (numpy/scipy; no Python loop over values) and returns plain
floats. The definitions, as the tests check them:

* ``ks``: the two-sample Kolmogorov–Smirnov statistic and p-value of
  ``scipy.stats.ks_2samp`` (two-sided, ``method="auto"``: exact up to 10,000 values per
  side, Smirnov's asymptotic distribution above).
* ``wasserstein_normed``: ``scipy.stats.wasserstein_distance(ref, cur)`` divided by the
  reference's population standard deviation (at least 0.001, as Evidently does, so a
  constant reference does not divide by zero). Computed from the two sorted samples as
  the integral of the difference of their quantile functions, which is the same number
  in O(n) after sorting (scipy sorts the pooled sample and searches it).
* ``chi_square``: Pearson's chi-square test of independence on the 2×k table of counts
  (reference, current) — ``scipy.stats.chi2_contingency(table, correction=False)`` —
  after dropping categories absent from both; one category left gives 0 and p = 1.
* ``jensen_shannon``: ``scipy.spatial.distance.jensenshannon(p, q)`` (natural log, so
  between 0 and sqrt(ln 2) ≈ 0.833) of the two count vectors normalised to proportions.
* ``psi``: the population stability index ``Σ (q − p) · ln(q / p)`` over the same bins,
  with each proportion floored at ``PSI_EPSILON`` (1e-4) so an empty bin counts as
  rare rather than making the index infinite.
* Profile-based approximations (``ks_from_quantiles``, ``wasserstein_from_quantiles``):
  the reference is known only through its quantile sketch, taken as piecewise linear.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "PSI_EPSILON",
    "chi_square",
    "jensen_shannon",
    "ks",
    "ks_from_quantiles",
    "normed",
    "population_std",
    "psi",
    "quantiles_of_sorted",
    "ref_ranks",
    "wasserstein",
    "wasserstein_from_quantiles",
    "wasserstein_normed",
    "wasserstein_part",
]

PSI_EPSILON = 1e-4
BLOCK = 32_768  # values per block of a streamed pass (256 KiB of float64)
# The std's scratch is live while the other side's sorted copy is too (the column's peak):
# 64 KiB instead of 256 KiB costs ~1 ms of CPU per million values (of ~65 ms a column).
_STD_BLOCK = 8_192
_MIN_NORM = 0.001
_GRID = 4096  # quantile levels used when the reference is a sketch


def ks(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float]:
    """Return the two-sample KS statistic and p-value (scipy's ``ks_2samp``, two-sided)."""
    from scipy import stats

    result = stats.ks_2samp(ref_sorted, cur_sorted)
    return float(result.statistic), float(result.pvalue)


def wasserstein(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, *, overwrite_cur: bool = False
) -> float:
    """Return the 1-Wasserstein distance between two sorted samples (equal weights).

    W1 = ∫₀¹ |Q_ref(t) − Q_cur(t)| dt, with the empirical quantile functions as step
    functions: the steps of both meet on the grid {i/n} ∪ {j/m}, which is built in
    integers over lcm(n, m) so no rounding moves a step. ``overwrite_cur=True`` lets
    equal-sized samples' differences be written over ``cur_sorted`` (a caller done with
    it saves a temporary the size of a column).
    """
    import numpy as np

    n, m = len(ref_sorted), len(cur_sorted)
    if n == m:  # both step at i/n: the integral is a mean of paired differences
        gaps = cur_sorted if overwrite_cur else np.empty_like(cur_sorted)
        np.subtract(ref_sorted, cur_sorted, out=gaps)
        np.abs(gaps, out=gaps)
        return float(np.mean(gaps))
    g = math.gcd(n, m)
    step_ref, step_cur = m // g, n // g  # 1/n and 1/m in units of 1/lcm
    lcm = n * step_ref
    # The grid is walked in spans of about BLOCK steps: its integer arrays, and the gaps
    # gathered on them, would otherwise be several times the size of both samples.
    spans = max(1, -(-(n + m - 1) // BLOCK))
    total = 0.0
    i0, j0 = 0, 1  # the next steps of each sample not yet walked (j = 0 is i = 0's)
    for k in range(1, spans + 1):
        end = lcm * k // spans  # Python ints: lcm · k may pass int64
        i1 = min(n, -(-end // step_ref))  # ref steps i · step_ref < end
        j1 = max(j0, min(m, -(-end // step_cur)))
        grid = np.concatenate(
            [
                np.arange(i0, i1, dtype=np.int64) * step_ref,
                np.arange(j0, j1, dtype=np.int64) * step_cur,
            ]
        )
        grid.sort()
        after = min(i1 * step_ref if i1 < n else lcm, j1 * step_cur if j1 < m else lcm)
        widths = np.diff(grid, append=after)
        gaps = ref_sorted[grid // step_ref]
        gaps -= cur_sorted[grid // step_cur]
        np.abs(gaps, out=gaps)
        # Weighted in place and summed (pairwise) rather than np.dot: BLAS would cast the
        # integer widths to a copy and, on a busy machine, wake its threads for each span.
        np.multiply(gaps, widths, out=gaps)
        total += float(np.sum(gaps))
        i0, j0 = i1, j1
    return total / lcm


def wasserstein_part(
    ref_sorted: np.ndarray,
    cur_part: np.ndarray,
    start: int,
    m: int,
    *,
    ref_start: int = 0,
    n: int | None = None,
) -> float:
    """Return the share of ``wasserstein(ref, cur)`` over the current's ranks ``start`` to
    ``start + len(cur_part)``, where ``cur_part`` is that slice of the sorted current
    sample of ``m`` values: the parts of consecutive slices add up to the distance.

    ``ref_sorted`` is the sorted reference of ``n`` values (default: its length), or the
    slice of it from rank ``ref_start`` that the part needs (``ref_ranks`` says which).
    The same integral as ``wasserstein``, walked over the part's share of the grid in spans
    of about ``BLOCK`` steps; ``cur_part`` is written over (its caller is done with it).
    """
    import numpy as np

    n = len(ref_sorted) if n is None else n
    length = len(cur_part)
    if length == 0:
        return 0.0
    if n == m:  # both step at i/n: paired differences
        low = start - ref_start
        np.subtract(cur_part, ref_sorted[low : low + length], out=cur_part)
        np.abs(cur_part, out=cur_part)
        return float(np.sum(cur_part)) / n
    g = math.gcd(n, m)
    step_ref, step_cur = m // g, n // g
    lcm = n * step_ref
    first, last = start * step_cur, (start + length) * step_cur  # the part's share, in 1/lcm
    i0, j0 = -(-first // step_ref), start  # the first ref step and cur step in the share
    i_end = -(-last // step_ref)
    spans = max(1, -(-(length + i_end - i0) // BLOCK))
    total = 0.0
    for k in range(1, spans + 1):
        end = first + (last - first) * k // spans
        i1 = min(n, max(i0, -(-end // step_ref)))
        j1 = min(start + length, max(j0, -(-end // step_cur)))
        grid = np.concatenate(
            [
                np.arange(i0, i1, dtype=np.int64) * step_ref,
                np.arange(j0, j1, dtype=np.int64) * step_cur,
            ]
        )
        grid.sort()
        after = min(i1 * step_ref if i1 < n else lcm, j1 * step_cur, last)
        widths = np.diff(grid, append=after)
        gaps = ref_sorted[grid // step_ref - ref_start]
        gaps -= cur_part[grid // step_cur - start]
        np.abs(gaps, out=gaps)
        np.multiply(gaps, widths, out=gaps)
        total += float(np.sum(gaps))
        i0, j0 = i1, j1
    return total / lcm


def ref_ranks(start: int, length: int, n: int, m: int) -> tuple[int, int]:
    """The reference ranks ``[low, high)`` that ``wasserstein_part`` reads for a current
    part of ``length`` values from rank ``start`` (of ``m``), against ``n`` values."""
    if n == m:
        return start, start + length
    g = math.gcd(n, m)
    step_ref, step_cur = m // g, n // g
    return (start * step_cur) // step_ref, ((start + length) * step_cur - 1) // step_ref + 1


def population_std(values: np.ndarray, mean: float) -> float:
    """``numpy.std(values)`` (population) without its temporary the size of the column.

    The squared deviations are summed block by block (each block pairwise, as numpy
    sums), so a wide frame's columns in flight hold a block each, not a copy each.
    """
    import numpy as np

    if len(values) == 0:
        return math.nan  # as numpy.std gives, without its warning
    total = 0.0
    scratch = np.empty(min(len(values), _STD_BLOCK), dtype=np.float64)
    for start in range(0, len(values), _STD_BLOCK):
        block = values[start : start + _STD_BLOCK]
        part = scratch[: len(block)]
        np.subtract(block, mean, out=part)
        np.square(part, out=part)
        total += float(np.sum(part))
    return math.sqrt(total / len(values))


def _norm(std: float) -> float:
    return max(float(std), _MIN_NORM)


def normed(distance: float, ref_std: float) -> float:
    """Return a distance divided by the reference's std (at least 0.001)."""
    return distance / _norm(ref_std)


def wasserstein_normed(
    ref_sorted: np.ndarray, cur_sorted: np.ndarray, ref_std: float, *, overwrite_cur: bool = False
) -> float:
    """Return the Wasserstein distance divided by the reference's std (at least 0.001)."""
    return normed(wasserstein(ref_sorted, cur_sorted, overwrite_cur=overwrite_cur), ref_std)


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Return Pearson's chi-square statistic and p-value on the 2×k table of counts."""
    import numpy as np
    from scipy import stats

    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def _proportions(counts: np.ndarray) -> np.ndarray:
    import numpy as np

    counts = np.asarray(counts, dtype=np.float64)
    return counts / counts.sum()


def _relative_entropy(p: np.ndarray, q: np.ndarray) -> float:
    """Σ p · ln(p / q) with 0 · ln 0 = 0 (``scipy.special.rel_entr``, without its import)."""
    import numpy as np

    used = p > 0
    return float(np.sum(p[used] * np.log(p[used] / q[used])))


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Return the Jensen–Shannon distance (natural log) between two count vectors."""
    import numpy as np

    p, q = _proportions(ref_counts), _proportions(cur_counts)
    m = (p + q) / 2.0
    divergence = (_relative_entropy(p, m) + _relative_entropy(q, m)) / 2.0
    return float(np.sqrt(max(divergence, 0.0)))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Return the population stability index of two count vectors (proportions floored)."""
    import numpy as np

    p = np.maximum(_proportions(ref_counts), PSI_EPSILON)
    q = np.maximum(_proportions(cur_counts), PSI_EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _reference_cdf(quantiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x, F(x)) of the reference CDF implied by quantiles at evenly spaced levels."""
    import numpy as np

    levels = np.linspace(0.0, 1.0, len(quantiles))
    # Tied quantiles (a point mass): keep the highest level, so the CDF is right-continuous.
    last = np.r_[quantiles[1:] != quantiles[:-1], True]
    return quantiles[last], levels[last]


def ks_from_quantiles(
    quantiles: np.ndarray, n_ref: int, cur_sorted: np.ndarray
) -> tuple[float, float]:
    """Return the KS statistic and asymptotic p-value against a reference quantile sketch.

    The reference CDF is interpolated linearly between its quantiles; the statistic is
    the largest gap to the current sample's empirical CDF at the current values and the
    sketch's knots, so its error is at most the sketch's level step (1 / (k − 1)).
    """
    import numpy as np
    from scipy import stats

    xs, fs = _reference_cdf(np.asarray(quantiles, dtype=np.float64))
    points = np.union1d(cur_sorted, xs)
    m = len(cur_sorted)
    cur_right = np.searchsorted(cur_sorted, points, side="right") / m
    cur_left = np.searchsorted(cur_sorted, points, side="left") / m
    if len(xs) == 1:
        ref = (points >= xs[0]).astype(np.float64)
        ref_left = (points > xs[0]).astype(np.float64)
    else:
        ref = np.interp(points, xs, fs, left=0.0, right=1.0)
        ref_left = ref
    d = float(max(np.max(np.abs(ref - cur_right)), np.max(np.abs(ref_left - cur_left))))
    big, small = max(n_ref, m), min(n_ref, m)
    en = big * small / (big + small)
    return d, float(np.clip(stats.kstwo.sf(d, round(en)), 0.0, 1.0))


def quantiles_of_sorted(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Return ``numpy.quantile(values, levels)`` (linear method) of an already sorted array."""
    import numpy as np

    position = np.asarray(levels, dtype=np.float64) * (len(values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(values) - 1)
    t = position - low
    # Weighted sum rather than a + (b − a)·t: b − a overflows for values near ±1.8e308.
    return values[low] * (1.0 - t) + values[high] * t


def wasserstein_from_quantiles(
    quantiles: np.ndarray, ref_std: float, cur_sorted: np.ndarray
) -> float:
    """Return the normed Wasserstein distance against a reference quantile sketch.

    ∫₀¹ |Q_ref(t) − Q_cur(t)| dt by the midpoint rule on 4,096 levels, both quantile
    functions taken linear between their quantiles at the sketch's levels: seen through
    the same sketch, two samples of one distribution show the same interpolation error,
    which then cancels instead of reading as drift.
    """
    import numpy as np

    quantiles = np.asarray(quantiles, dtype=np.float64)
    levels = np.linspace(0.0, 1.0, len(quantiles))
    cur_quantiles = quantiles_of_sorted(cur_sorted, levels)
    t = (np.arange(_GRID) + 0.5) / _GRID
    gap = np.interp(t, levels, quantiles) - np.interp(t, levels, cur_quantiles)
    return float(np.mean(np.abs(gap))) / _norm(ref_std)
