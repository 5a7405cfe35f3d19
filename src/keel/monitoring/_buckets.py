"""Aligned count vectors of reference and current data: categories or the reference's bins."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from keel.monitoring._frames import NUMBER
from keel.monitoring._profile import NumericSketch, ProfiledColumn, bin_counts, bin_edges
from keel.monitoring.results import Distribution

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["category_vectors", "distribution", "numeric_vectors", "runs"]

OTHER = "(other)"
_TOP = 20
_DICT_LOOKUP = 1000  # values of both sides up to which categories are matched in a dict


def _label(value: object) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def runs(values: np.ndarray) -> tuple[pd.Index, np.ndarray]:
    """Distinct values of a sorted array, as an Index, and how often each occurs."""
    import pandas as pd

    from keel.monitoring._profile import _runs

    distinct, counts = _runs(values)
    return pd.Index(distinct), counts


def _positions(ref_values: pd.Index, cur_values: pd.Index) -> np.ndarray:
    """``ref_values.get_indexer(cur_values)``: each current value's place, -1 when new.

    Few object values are looked up in a dict (the same hash and equality as the Index's
    table), which spares mapping pandas' hashing code for a handful of categories.
    """
    import numpy as np

    if ref_values.dtype != object or len(ref_values) + len(cur_values) > _DICT_LOOKUP:
        return ref_values.get_indexer(cur_values)
    places = {value: i for i, value in enumerate(ref_values)}
    return np.fromiter(
        (places.get(value, -1) for value in cur_values), dtype=np.intp, count=len(cur_values)
    )


def category_vectors(
    ref: ProfiledColumn, cur_values: pd.Index, cur_counts: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels and count vectors over the reference's categories, then the current's new ones.

    A pooled (capped) profile cannot tell a new category from a pooled one, so current
    values it does not list go to its ``(other)`` bucket instead.
    """
    import numpy as np
    import pandas as pd

    p = ref.profile
    if ref.cats is not None:
        ref_values, ref_counts = ref.cats.values, ref.cats.counts
        other, pooled = 0, False
    else:
        ref_values = pd.Index(list(p.category_values), dtype=object)
        ref_counts = np.asarray(p.category_counts, dtype=np.int64)
        other, pooled = p.other, p.capped or p.other > 0
    if p.family == NUMBER:
        ref_values = pd.Index(np.asarray(ref_values, dtype=np.float64))
    position = _positions(ref_values, cur_values)
    known = position >= 0
    cur_aligned = np.zeros(len(ref_values), dtype=np.int64)
    np.add.at(cur_aligned, position[known], cur_counts[known])
    unseen = cur_counts[~known]
    labels = [_label(v) for v in ref_values]
    if pooled:
        return (
            [*labels, OTHER],
            np.append(ref_counts, other),
            np.append(cur_aligned, unseen.sum()),
        )
    labels += [_label(v) for v in cur_values[~known]]
    ref_vec = np.concatenate([ref_counts, np.zeros(len(unseen), dtype=np.int64)])
    return labels, ref_vec, np.concatenate([cur_aligned, unseen])


def numeric_vectors(
    sketch: NumericSketch,
    cur_sorted: np.ndarray | None,
    bins: int,
    counts: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels and counts in the reference's bins (with the below/above buckets).

    The current's counts are those of ``cur_sorted``, or ``counts`` when already taken.
    """
    import numpy as np

    edges = bin_edges(sketch.min, sketch.max, bins)
    labels = [f"< {sketch.min:.4g}"]
    labels += [f"{a:.4g} – {b:.4g}" for a, b in itertools.pairwise(edges)]
    labels.append(f"> {sketch.max:.4g}")
    ref_vec = np.asarray(sketch.histogram, dtype=np.int64)
    if counts is None:
        counts = bin_counts(cur_sorted, sketch.min, sketch.max, bins)
    return labels, ref_vec, counts


def distribution(
    labels: list[str], ref_vec: np.ndarray, cur_vec: np.ndarray, *, numeric: bool
) -> Distribution:
    """The buckets to plot: all bins of a numeric column, the top categories otherwise."""
    import numpy as np

    if numeric or len(labels) <= _TOP:
        return Distribution(tuple(labels), tuple(map(int, ref_vec)), tuple(map(int, cur_vec)))
    order = np.argsort(-(ref_vec / max(ref_vec.sum(), 1) + cur_vec / max(cur_vec.sum(), 1)))
    top, rest = order[: _TOP - 1], order[_TOP - 1 :]
    return Distribution(
        (*(labels[i] for i in top), OTHER),
        (*map(int, ref_vec[top]), int(ref_vec[rest].sum())),
        (*map(int, cur_vec[top]), int(cur_vec[rest].sum())),
    )
