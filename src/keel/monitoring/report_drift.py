"""Drift over time of a dataset with a time column: ``keel monitor drift --time-column``.

``drift_over_time(reference, current, time_column="ts", bucket="1h")`` cuts the current
data into buckets of its time column (aligned to the epoch, as ``monitor_windows`` aligns
windows) and compares each bucket with the reference through ``keel.monitoring.drift``
with the same options, so each bucket's verdict is what ``drift`` says of those rows. The
time column is a datetime column (a naive one is taken as UTC) or integers of ms since the
epoch; it is never compared itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.windows import parse_window

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring.results import DriftReport

__all__ = ["MAX_BUCKETS", "DriftBucket", "drift_over_time", "split_time"]

MAX_BUCKETS = 1_000  # one drift computation each: more is a batch job, not a report


@dataclass(frozen=True)
class DriftBucket:
    """One bucket of the current data [start_ms, end_ms) and its drift against the reference."""

    start_ms: int
    end_ms: int
    rows: int
    report: DriftReport

    def to_dict(self) -> dict[str, Any]:
        """Return the bucket as JSON-ready data (its drift without plot distributions)."""
        from keel.monitoring.windows_data import drift_summary

        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "rows": self.rows,
            "drift": drift_summary(self.report),
        }


def _times_ms(frame: pd.DataFrame, column: str) -> Any:
    import numpy as np
    import pandas as pd

    if column not in frame.columns:
        names = ", ".join(map(repr, list(frame.columns)[:8]))
        raise InvalidInput(
            f"--time-column {column!r} is not a column of the current data ({names})"
        )
    values = frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values, utc=True)
        ms = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        return ms.to_numpy(dtype="float64", na_value=np.nan)
    if pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    raise InvalidInput(
        f"time column {column!r} holds {values.dtype}: it must be datetimes or integers of "
        "ms since the epoch"
    )


def split_time(
    frame: pd.DataFrame, column: str, bucket: str | int | float
) -> tuple[int, list[tuple[int, pd.DataFrame]]]:
    """Return the bucket length (ms) and each non-empty bucket's start and rows, oldest first.

    Rows without a time are left out; more than 1,000 buckets is an ``InvalidInput``.
    """
    import numpy as np

    try:
        bucket_ms = parse_window(bucket)
    except InvalidInput as exc:
        raise InvalidInput(f"--bucket: {exc}") from None
    ms = _times_ms(frame, column)
    known = ~np.isnan(ms)
    if not known.any():
        raise InvalidInput(f"time column {column!r} has no value: nothing to put in buckets")
    index = (ms[known] // bucket_ms).astype(np.int64)
    kept = frame.loc[known].drop(columns=column)
    starts = np.unique(index)
    if len(starts) > MAX_BUCKETS:
        raise InvalidInput(
            f"the data spans {len(starts):,} buckets of {bucket!r}; the most is "
            f"{MAX_BUCKETS:,}: use a longer --bucket"
        )
    order = np.argsort(index, kind="stable")  # one sort, then contiguous slices per bucket
    bounds = [*np.searchsorted(index[order], starts, side="left").tolist(), len(order)]
    parts = [
        (int(b) * bucket_ms, kept.iloc[order[bounds[i] : bounds[i + 1]]])
        for i, b in enumerate(starts.tolist())
    ]
    return bucket_ms, parts


def drift_over_time(
    reference: Any,
    current: Any,
    *,
    time_column: str,
    bucket: str | int | float = "1h",
    options: Mapping[str, Any] | None = None,
) -> list[DriftBucket]:
    """Return each bucket of ``current`` with its ``DriftReport`` against ``reference``.

    ``options`` are ``drift``'s keyword options (columns, methods, thresholds, ...).
    """
    from keel.monitoring._drift import drift
    from keel.monitoring._frames import load_frame
    from keel.monitoring._profile import ReferenceProfile

    frame = load_frame(current, role="current")
    if not isinstance(reference, ReferenceProfile):
        reference = load_frame(reference, role="reference")  # read once, not per bucket
        if time_column in reference.columns:
            reference = reference.drop(columns=time_column)
    kwargs = {k: v for k, v in (options or {}).items() if k != "multivariate"}
    bucket_ms, parts = split_time(frame, time_column, bucket)
    return [
        DriftBucket(start, start + bucket_ms, len(rows), drift(reference, rows, **kwargs))
        for start, rows in parts
    ]
