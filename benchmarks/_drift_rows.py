"""The figures-table rows of (h) and (i): data drift, Keel vs Evidently vs scipy floors."""

from __future__ import annotations

from _report import Row, Target

__all__ = ["drift_rows"]


def drift_rows() -> tuple[Row, ...]:
    """Time and peak memory per system, with the issue's targets on Evidently and the floor."""
    rows: list[Row] = []
    seconds = {"figure": "seconds", "unit": "s (drift, 25 columns)", "higher_is_better": False}
    memory = {"figure": "peak_rss_mb", "unit": "MB peak RSS", "higher_is_better": False}
    note = "{rows:,} rows each side; {columns_drifted} drifted; data+imports {data_rss_mb:,.0f} MB"
    # The frames' mark is what the peak holds before the system loads anything (interpreter,
    # numpy, pandas, the data), so peak minus it is what the system itself added.
    memory_note = "RSS high-water, fresh process; {frames_rss_mb:,.0f} MB with the frames alone"
    for b in ("h", "i"):
        rows += [
            Row(b, "keel", "keel drift()", **seconds, note=note),
            Row(
                b,
                "evidently",
                "evidently DataDriftPreset",
                **seconds,
                target=Target("keel ≥ 20×", min_speedup=20),
                note=note,
            ),
            Row(
                b,
                "floor",
                "floor: scipy calls",
                **seconds,
                target=Target("within 2× (≥ 0.5×)", min_speedup=0.5),
                note="wasserstein_distance, jensenshannon; max |Δ statistic| "
                "{max_statistic_gap:.1e}",
            ),
            Row(
                b,
                "floor_numpy",
                "floor: numpy, 1 thread",
                **seconds,
                note="sort + mean |Δ|, factorize + bincount; max |Δ| {max_statistic_gap:.1e}",
            ),
            Row(b, "keel", "keel drift()", **memory, note=memory_note),
            Row(
                b,
                "evidently",
                "evidently DataDriftPreset",
                **memory,
                target=Target("keel ≤ ⅓ (≥ 3×)", min_speedup=3),
                note=memory_note,
            ),
            Row(b, "floor", "floor: scipy calls", **memory, note="RSS high-water"),
        ]
    return tuple(rows)
