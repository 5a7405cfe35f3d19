"""keel.monitoring.windows: windows of a prediction-log frame, checked against brute force."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from windows_support import HOUR, T0, log_frame, reference

from keel.errors import InvalidInput
from keel.monitoring.windows import MAX_WINDOW_MS, compute_window, compute_windows, parse_window


@pytest.mark.parametrize(
    ("text", "ms"),
    [("30s", 30_000), ("5m", 300_000), ("1h", HOUR), ("1d", 86_400_000), (" 2h ", 2 * HOUR),
     (90, 90_000), (0.5 * 60, 30_000), ("366d", MAX_WINDOW_MS)],
)  # fmt: skip
def test_parse_window(text: object, ms: int) -> None:
    assert parse_window(text) == ms  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    ["0m", "-1h", "abc", "", "1w", "1.5h", "h", "367d", "99999999999d", 0, -5, math.nan,
     math.inf, 0.2, True, None, ["1h"], "1h; DROP TABLE", "1" * 200 + "h"],
)  # fmt: skip
def test_parse_window_refuses(bad: object) -> None:
    with pytest.raises(InvalidInput, match="window"):
        parse_window(bad)  # type: ignore[arg-type]


def _brute_health(frame: pd.DataFrame, start: int, end: int) -> dict[str, float]:
    inside = frame[(frame["time_ms"] >= start) & (frame["time_ms"] < end)]
    requests = inside.groupby("request_id").first()
    ok = requests[requests["status"] == 200]["latency_ms"].to_numpy()
    ok = ok[np.isfinite(ok)]
    return {
        "requests": len(requests),
        "rows": len(inside),
        "error_rate": float((requests["status"] >= 500).mean()),
        "p50": float(np.percentile(ok, 50)),
        "p95": float(np.percentile(ok, 95)),
        "p99": float(np.percentile(ok, 99)),
        "throughput": len(requests) / ((end - start) / 1000),
    }


def test_health_per_window_matches_brute_force() -> None:
    frame = log_frame(600, span_ms=3 * HOUR, error_every=7, rows_per_request=4, seed=3)
    reports = compute_windows(frame, window="1h", references={("churn", "1"): reference()})
    assert [r.start_ms for r in reports] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    for report in reports:
        assert report.end_ms - report.start_ms == HOUR
        expected = _brute_health(frame, report.start_ms, report.end_ms)
        health = report.health
        assert health is not None
        assert health.requests == expected["requests"]  # per request, not per row
        assert health.rows == expected["rows"]
        assert health.error_rate == pytest.approx(expected["error_rate"])
        assert health.latency_p50_ms == pytest.approx(expected["p50"])
        assert health.latency_p95_ms == pytest.approx(expected["p95"])
        assert health.latency_p99_ms == pytest.approx(expected["p99"])
        assert health.throughput_rps == pytest.approx(expected["throughput"])
    assert sum(r.health.requests for r in reports if r.health) == 600


def test_windows_are_epoch_aligned_and_cut_by_start_and_end() -> None:
    frame = log_frame(300, span_ms=2 * HOUR, seed=4)
    start, end = T0 + HOUR // 2, T0 + HOUR + HOUR // 4
    reports = compute_windows(frame, window="1h", start=start, end=end)
    assert [r.start_ms for r in reports] == [T0, T0 + HOUR]
    first, second = reports
    assert first.health
    assert second.health
    # The throughput divides by the part of each window the query covers.
    assert first.health.throughput_rps == pytest.approx(first.health.requests / 1800)
    assert second.health.throughput_rps == pytest.approx(second.health.requests / 900)
    inside = frame[(frame["time_ms"] >= start) & (frame["time_ms"] < end)]
    assert first.health.requests + second.health.requests == inside["request_id"].nunique()
    aware = compute_windows(
        frame,
        window="1h",
        start=datetime.fromtimestamp(start / 1000, UTC),
        end=datetime.fromtimestamp(end / 1000, UTC),
    )
    assert [r.to_dict() for r in aware] == [r.to_dict() for r in reports]


def test_quality_and_drift_per_window() -> None:
    ref = reference()
    calm = log_frame(200, seed=5)
    shifted = log_frame(200, seed=6, start_ms=T0 + HOUR, shift=4.0)
    shifted.loc[shifted.index[:60], "input.y"] = np.nan
    shifted.loc[shifted.index[:30], "input.colour"] = "purple"
    frame = pd.concat([calm, shifted], ignore_index=True)
    first, second = compute_windows(frame, window="1h", references={("churn", "1"): ref})
    q1, q2 = first.versions[0].quality, second.versions[0].quality
    assert q1 is not None
    assert q2 is not None
    assert q1.schema_ok
    by_name = {c.column: c for c in q2.columns}
    ok = shifted[shifted["status"] == 200]
    assert by_name["y"].missing == int(ok["input.y"].isna().sum())
    assert by_name["colour"].unseen == int((ok["input.colour"] == "purple").sum())
    x = ok["input.x"].to_numpy()
    lo, hi = ref.columns["x"].numeric.min, ref.columns["x"].numeric.max  # type: ignore[union-attr]
    assert by_name["x"].out_of_range == int(((x < lo) | (x > hi)).sum())
    drift1, drift2 = first.versions[0].drift, second.versions[0].drift
    assert drift1 is not None
    assert drift2 is not None
    assert drift2.column("x").drifted
    assert not drift1.column("x").drifted
    assert drift2.share > drift1.share


def test_schema_violations_missing_extra_and_type_changes() -> None:
    frame = log_frame(50, seed=7).drop(columns=["input.y"])
    frame["input.extra"] = 1.0
    frame["input.x"] = frame["input.x"].map(lambda v: None if pd.isna(v) else f"v{v:.2f}")
    (report,) = compute_windows(frame, window="1h", references={("churn", "1"): reference()})
    quality = report.versions[0].quality
    assert quality is not None
    assert quality.missing_columns == ("y",)
    assert quality.extra_columns == ("extra",)
    assert quality.type_changes == {"x": "number -> string"}
    assert not quality.schema_ok


def test_all_null_input_column_is_a_missing_column() -> None:
    frame = log_frame(40, seed=8)
    frame["input.y"] = np.nan
    (report,) = compute_windows(frame, window="1h", references={("churn", "1"): reference()})
    assert report.versions[0].quality.missing_columns == ("y",)  # type: ignore[union-attr]


def test_versions_are_reported_apart_with_their_own_reference() -> None:
    stable = log_frame(300, seed=9, version="1")
    canary = log_frame(60, seed=10, version="2", shift=3.0)
    frame = pd.concat([stable, canary], ignore_index=True)
    (report,) = compute_windows(
        frame, window="1h", references={("churn", "1"): reference(), ("churn", "2"): "no run"}
    )
    versions = {v.version: v for v in report.versions}
    assert versions["1"].requests == 300
    assert versions["2"].requests == 60
    assert report.primary is versions["1"]
    assert versions["2"].quality is None
    assert versions["2"].notes["drift"] == "no run"
    assert versions["2"].performance is not None  # feedback needs no reference
    assert report.health is not None
    assert report.health.requests == 360


def test_failed_and_unsampled_rows_are_left_out_of_quality() -> None:
    frame = log_frame(100, seed=11, error_every=4)
    frame.loc[frame.index[:30], "sampled"] = False
    (report,) = compute_windows(frame, window="1h", references={("churn", "1"): reference()})
    version = report.versions[0]
    expected = ((frame["status"] == 200) & frame["sampled"]).sum()
    assert version.sampled_rows == expected
    assert version.quality is not None
    assert version.quality.rows == expected


def test_nan_and_infinite_latencies_are_left_out_and_counted() -> None:
    frame = log_frame(50, seed=12, rows_per_request=1)
    frame.loc[frame.index[:3], "latency_ms"] = [np.nan, np.inf, -np.inf]
    (report,) = compute_windows(frame, window="1h")
    health = report.health
    assert health is not None
    assert health.bad_latencies == 3
    assert health.requests == 50
    finite = frame["latency_ms"].to_numpy()[3:]
    assert health.latency_p99_ms == pytest.approx(float(np.percentile(finite, 99)))


def test_only_failures_give_no_latency_and_full_error_rate() -> None:
    frame = log_frame(10, seed=13, error_every=1, span_ms=60_000)
    (report,) = compute_windows(frame, window="5m")
    assert report.health is not None
    assert report.health.error_rate == 1.0
    assert report.health.latency_p50_ms is None
    assert report.versions[0].performance is None


def test_empty_frame_gives_no_windows() -> None:
    empty = log_frame(1, seed=14).iloc[0:0]
    assert compute_windows(empty, window="1h") == []
    assert compute_windows(pd.DataFrame(), window="1h") == []
    report = compute_window(empty, start=T0, end=T0 + HOUR)
    assert report.health is None
    assert report.versions == ()


def test_bad_frames_and_ranges_are_refused() -> None:
    with pytest.raises(InvalidInput, match="DataFrame"):
        compute_windows({"time_ms": [1]}, window="1h")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="'status'"):
        compute_windows(log_frame(5, seed=15).drop(columns=["status"]), window="1h")
    with pytest.raises(InvalidInput, match="after start"):
        compute_windows(log_frame(5, seed=15), window="1h", start=T0 + 10, end=T0)
    with pytest.raises(InvalidInput, match="aware"):
        compute_windows(log_frame(5, seed=15), window="1h", start=datetime(2026, 1, 1))
    with pytest.raises(InvalidInput, match="epoch"):
        compute_windows(log_frame(5, seed=15), window="1h", start=-1)


def test_too_many_windows_is_refused() -> None:
    frame = log_frame(20, seed=16, span_ms=30 * 86_400_000, rows_per_request=1)
    assert len(compute_windows(frame, window="1d")) <= 20
    frame = log_frame(12_000, seed=16, span_ms=12_000 * 10_000, rows_per_request=1)
    with pytest.raises(InvalidInput, match="10,000"):
        compute_windows(frame, window="1s")


def test_a_huge_window_holds_everything() -> None:
    frame = log_frame(100, seed=17, span_ms=40 * 86_400_000)
    reports = compute_windows(frame, window="366d")
    assert sum(r.health.requests for r in reports if r.health) == 100


def test_to_dict_is_json() -> None:
    frame = log_frame(80, seed=18, error_every=5)
    (report,) = compute_windows(
        frame,
        window="1h",
        references={("churn", "1"): reference()},
        offline={("churn", "1"): {"accuracy": 0.99}},
    )
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    version = data["versions"][0]
    assert version["decay"]["offline"] == {"accuracy": 0.99}
    assert set(version["drift"]) >= {"share", "dataset_drifted", "columns"}
    assert data["health"]["requests"] == 80
