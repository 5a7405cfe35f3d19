"""A numeric column's two sides in blocks of ranks, when one thread does the whole column.

``keel.monitoring._current`` sums a numeric current column in blocks beside the
reference's sorted copy. Here the reference is taken in blocks as well (the same cut by
value, with its own pivots), so the column holds a block of each side and the reference
values a current block pairs with, instead of a sorted copy. The reference's profile
comes out as ``profile_column`` makes it: counts, min and max, quantiles, histogram and
distinct count exactly; the mean and standard deviation summed a chunk (then a block) at
a time instead of over one sorted copy, so equal to rounding.

Taken only where nothing else is needed: plain numpy numbers on both sides, a reference
whose sample already shows more than ``CATEGORICAL_MAX_DISTINCT`` distinct values (so it
is compared as numbers), the Wasserstein distance or a binned method (not KS), and finite
sums. Otherwise ``paired_column`` returns None and the column takes the usual path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from keel.monitoring import stats
from keel.monitoring._current import (
    CurrentColumn,
    CurrentSums,
    can_stream,
    finite_blocks,
    finite_count,
    sample,
)
from keel.monitoring._frames import NUMBER
from keel.monitoring._profile import (
    CATEGORICAL_MAX_DISTINCT,
    NUMERIC,
    ColumnProfile,
    NumericSketch,
    ProfiledColumn,
    _distinct_sorted,
    bin_counts,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["paired_column"]

_CHUNK = 32_768  # values read at a time by the passes over the unsorted reference


class _Moments:
    """The reference's finite count, missing and ±inf counts, min, max and mean."""

    def __init__(self, values: np.ndarray) -> None:
        import numpy as np

        self.count = self.missing = 0
        self.low, self.high, total = math.inf, -math.inf, 0.0
        finite = np.empty(min(len(values), _CHUNK), dtype=bool)
        for start in range(0, len(values), _CHUNK):
            part = values[start : start + _CHUNK]
            if part.dtype.kind == "f":
                keep = finite[: len(part)]
                np.isfinite(part, out=keep)
                self.missing += int(np.count_nonzero(np.isnan(part)))
                part = part[keep].astype(np.float64, copy=False)
            else:
                part = part.astype(np.float64)
            if len(part):
                self.count += len(part)
                self.low = min(self.low, float(part.min()))
                self.high = max(self.high, float(part.max()))
                total += float(np.sum(part))
        self.non_finite = len(values) - self.count - self.missing
        self.mean = total / self.count if self.count else math.nan


class _ReferenceBlocks:
    """The reference's blocks in order, profiled as they pass, with the recent ones kept
    for the current blocks to pair with (``take``)."""

    def __init__(self, values: np.ndarray, moments: _Moments, bins: int, quantiles: int) -> None:
        import numpy as np

        self._blocks = finite_blocks(values)
        self._pieces: list[tuple[int, np.ndarray]] = []
        self.end = 0  # reference ranks read so far
        self._moments, self._bins = moments, bins
        n = moments.count
        position = np.linspace(0.0, 1.0, quantiles) * (n - 1)
        self._low = np.floor(position).astype(np.int64)
        self._high = np.minimum(self._low + 1, n - 1)
        self._t = position - self._low
        self._low_values = np.empty(quantiles, dtype=np.float64)
        self._high_values = np.empty(quantiles, dtype=np.float64)
        self.histogram = np.zeros(bins + 2, dtype=np.int64)
        self.distinct = 0
        self.squares = 0.0

    def _next(self) -> np.ndarray | None:
        import numpy as np

        block = next(self._blocks, None)
        if block is None:
            return None
        start, stop, m = self.end, self.end + len(block), self._moments
        self.histogram += bin_counts(block, m.low, m.high, self._bins)
        self.distinct += _distinct_sorted(block)
        deviations = block - m.mean
        np.square(deviations, out=deviations)
        self.squares += float(np.sum(deviations))
        for ranks, out in ((self._low, self._low_values), (self._high, self._high_values)):
            inside = (ranks >= start) & (ranks < stop)
            out[inside] = block[ranks[inside] - start]
        self.end = stop
        return block

    def take(self, low: int, high: int) -> np.ndarray:
        """The reference's sorted values of ranks ``low`` to ``high`` (never below earlier
        calls' ``low``)."""
        import numpy as np

        while self.end < high:
            start, block = self.end, self._next()
            if block is None:
                break
            self._pieces.append((start, block))
        while self._pieces and self._pieces[0][0] + len(self._pieces[0][1]) <= low:
            self._pieces.pop(0)
        parts = [block[max(low - s, 0) : high - s] for s, block in self._pieces if s < high]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def finish(self) -> None:
        self._pieces.clear()
        while self._next() is not None:
            pass

    def quantiles(self) -> np.ndarray:
        """``quantiles_of_sorted`` of the whole reference (same formula, same values)."""
        return self._low_values * (1.0 - self._t) + self._high_values * self._t


def paired_column(
    name: str,
    ref_series: pd.Series,
    cur_series: pd.Series,
    *,
    bins: int,
    quantiles: int,
    choose: Callable[[str, int], str],
) -> tuple[ProfiledColumn, CurrentColumn] | None:
    """The column's reference profile and current sums, or None where this path does not
    apply (see the module doc). ``choose(kind, count)`` gives the column's method."""
    import numpy as np

    if not (can_stream(ref_series) and can_stream(cur_series)):
        return None
    ref_values, cur_values = ref_series.to_numpy(), cur_series.to_numpy()
    if _distinct_sorted(sample(ref_values)) <= CATEGORICAL_MAX_DISTINCT:
        return None
    moments = _Moments(ref_values)
    n, m = moments.count, finite_count(cur_values)
    if n == 0 or m == 0 or not math.isfinite(moments.mean):
        return None
    method = choose(NUMERIC, n)
    if method == "ks":
        return None
    reference = _ReferenceBlocks(ref_values, moments, bins, quantiles)
    counts = np.zeros(bins + 2, dtype=np.int64)
    distance = 0.0 if method == "wasserstein" else None
    rank = 0
    for part in finite_blocks(cur_values):
        counts += bin_counts(part, moments.low, moments.high, bins)
        if distance is not None:
            low, high = stats.ref_ranks(rank, len(part), n, m)
            pairs = reference.take(low, high)
            distance += stats.wasserstein_part(pairs, part, rank, m, ref_start=low, n=n)
        rank += len(part)
    reference.finish()
    std = math.sqrt(reference.squares / n)
    if reference.end != n or rank != m or not math.isfinite(std):
        return None  # sums that overflow: the usual path scales them
    sketch = NumericSketch(
        min=moments.low,
        max=moments.high,
        mean=moments.mean,
        std=std,
        quantiles=tuple(float(q) for q in reference.quantiles()),
        histogram=tuple(int(c) for c in reference.histogram),
    )
    column = ColumnProfile(
        name=name,
        dtype=str(ref_series.dtype),
        family=NUMBER,
        kind=NUMERIC,
        count=n,
        missing=moments.missing,
        non_finite=moments.non_finite,
        distinct=reference.distinct,
        numeric=sketch,
    )
    sums = CurrentSums(count=m, bins=counts, distance=distance)
    return ProfiledColumn(column), CurrentColumn(NUMBER, "", sums=sums)
