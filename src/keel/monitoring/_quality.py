"""Data quality of one window of current data, against a reference (raw or profile).

``quality(reference, current)`` returns a ``QualityReport``:

* schema violations: reference columns missing from the current data, extra columns,
  and type changes (the value family — number, string, bool — differs, or a column has
  become unsupported); a dtype change within a family (int64 → float64) is listed in
  ``dtype_changes`` but is not a violation;
* per compared column: the missing-value rate (NaN/None) now and in the reference,
  the values outside the reference's [min, max] (±inf always count as outside) for
  numbers, and for categorical columns the values the reference never had (their
  count, and up to ``max_examples`` of them, most frequent first). With a capped
  profile (categories pooled beyond ``max_categories``) a value outside the kept list
  cannot be told from a pooled one: ``unseen_exact`` is then False.

Empty frames, repeated names and unreadable input are an ``InvalidInput`` as in
``drift``; a column without usable values gives rates over what there is (an all-missing
column has ``missing_rate == 1.0``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.errors import InvalidInput
from keel.monitoring._frames import NUMBER, categories, family, load_frame, numeric_values
from keel.monitoring._profile import UNSUPPORTED, ColumnProfile, ReferenceProfile, profile_column

__all__ = ["ColumnQuality", "QualityReport", "quality"]


@dataclass(frozen=True)
class ColumnQuality:
    """Quality of one column in the current window."""

    column: str
    rows: int
    missing: int
    missing_rate: float
    reference_missing_rate: float
    out_of_range: int = 0  # numbers below the reference min or above its max, ±inf
    out_of_range_rate: float = 0.0
    unseen: int = 0  # values of categories the reference never had
    unseen_rate: float = 0.0
    unseen_examples: tuple[Any, ...] = ()
    unseen_exact: bool = True


@dataclass(frozen=True)
class QualityReport:
    """Schema violations and per-column quality of a current window."""

    rows: int
    columns: tuple[ColumnQuality, ...]
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    type_changes: dict[str, str] = field(default_factory=dict)
    dtype_changes: dict[str, str] = field(default_factory=dict)

    @property
    def schema_ok(self) -> bool:
        """True when no column is missing or extra and no type changed."""
        return not (self.missing_columns or self.extra_columns or self.type_changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        data = asdict(self)
        data["schema_ok"] = self.schema_ok
        data["missing_columns"] = list(self.missing_columns)
        data["extra_columns"] = list(self.extra_columns)
        for column in data["columns"]:
            column["unseen_examples"] = list(column["unseen_examples"])
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        """Return the report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=str)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _column(name: str, ref: ColumnProfile, series: Any, max_examples: int) -> ColumnQuality:
    import numpy as np
    import pandas as pd

    rows = len(series)
    ref_rows = ref.count + ref.missing + ref.non_finite
    base = {"column": name, "rows": rows, "reference_missing_rate": _rate(ref.missing, ref_rows)}
    fam, _ = family(series)
    if fam == NUMBER and ref.family == NUMBER and ref.numeric is not None:
        numbers = numeric_values(series)
        values = numbers.sorted
        below = int(np.searchsorted(values, ref.numeric.min, side="left"))
        above = len(values) - int(np.searchsorted(values, ref.numeric.max, side="right"))
        outside = below + above + numbers.non_finite
        return ColumnQuality(
            **base,
            missing=numbers.missing,
            missing_rate=_rate(numbers.missing, rows),
            out_of_range=outside,
            out_of_range_rate=_rate(outside, rows),
        )
    missing = int(series.isna().sum())
    if fam is None or fam != ref.family or ref.kind != "categorical" or fam == NUMBER:
        return ColumnQuality(**base, missing=missing, missing_rate=_rate(missing, rows))
    cats = categories(series, fam)
    known = pd.Index(list(ref.category_values), dtype=object)
    new = known.get_indexer(cats.values) < 0
    new_counts = cats.counts[new]
    order = np.argsort(-new_counts, kind="stable")[:max_examples]
    examples = tuple(cats.values[new][order].tolist())
    unseen = int(new_counts.sum())
    return ColumnQuality(
        **base,
        missing=cats.missing,
        missing_rate=_rate(cats.missing, rows),
        unseen=unseen,
        unseen_rate=_rate(unseen, rows),
        unseen_examples=examples,
        unseen_exact=not ref.capped,
    )


def quality(reference: Any, current: Any, *, max_examples: int = 20) -> QualityReport:
    """Return the ``QualityReport`` of ``current`` against ``reference`` (see the module doc)."""
    if isinstance(max_examples, bool) or not isinstance(max_examples, int):
        raise InvalidInput(f"max_examples must be an integer, not {max_examples!r}")
    if not 0 <= max_examples <= 10_000:
        raise InvalidInput(f"max_examples must be from 0 to 10,000, not {max_examples}")
    cur = load_frame(current, role="current")
    if isinstance(reference, ReferenceProfile):
        profiles = dict(reference.columns)
    else:
        frame = load_frame(reference, role="reference")
        profiles = {
            name: profile_column(
                name, frame[name], bins=1, quantiles=2, max_categories=None
            ).profile
            for name in frame.columns
        }
    cur_names = list(cur.columns)
    common = [c for c in profiles if c in set(cur_names)]
    type_changes: dict[str, str] = {}
    dtype_changes: dict[str, str] = {}
    for name in common:
        ref = profiles[name]
        fam, reason = family(cur[name])
        ref_fam = ref.family if ref.kind != UNSUPPORTED or ref.family else None
        if fam != ref_fam and not (fam is None and ref_fam is None):
            now = fam or f"unsupported ({reason})"
            type_changes[name] = f"{ref_fam or 'unsupported'} -> {now}"
        elif str(cur[name].dtype) != ref.dtype:
            dtype_changes[name] = f"{ref.dtype} -> {cur[name].dtype}"
    results = tuple(_column(n, profiles[n], cur[n], max_examples) for n in common)
    return QualityReport(
        rows=len(cur),
        columns=results,
        missing_columns=tuple(c for c in profiles if c not in set(cur_names)),
        extra_columns=tuple(c for c in cur_names if c not in profiles),
        type_changes=type_changes,
        dtype_changes=dtype_changes,
    )
