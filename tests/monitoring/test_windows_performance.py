"""Live performance per window and its decay, checked against scikit-learn on the same rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from windows_support import HOUR, T0, log_frame

from keel.errors import InvalidInput
from keel.monitoring.performance import decay, performance
from keel.monitoring.windows import compute_windows


def _labelled(frame: pd.DataFrame, start: int, end: int) -> pd.DataFrame:
    inside = frame[(frame["time_ms"] >= start) & (frame["time_ms"] < end)]
    return inside[(inside["status"] == 200) & inside["target"].notna()]


def test_binary_classifier_per_window_matches_sklearn() -> None:
    frame = log_frame(400, span_ms=2 * HOUR, seed=20, labelled=0.6, error_every=9)
    reports = compute_windows(frame, window="1h")
    assert len(reports) == 2
    for report in reports:
        rows = _labelled(frame, report.start_ms, report.end_ms)
        perf = report.versions[0].performance
        assert perf is not None
        assert perf.task == "classification"
        assert perf.rows == len(rows) == report.versions[0].labelled_rows
        y, p = rows["target"].to_numpy(), rows["output.predict"].to_numpy().astype(float)
        assert perf.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(y, p))
        assert perf.metrics["precision"] == pytest.approx(metrics.precision_score(y, p))
        assert perf.metrics["recall"] == pytest.approx(metrics.recall_score(y, p))
        assert perf.metrics["f1"] == pytest.approx(metrics.f1_score(y, p))
        score = rows["output.predict_proba.1"].to_numpy()
        assert perf.metrics["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, score))


def test_multiclass_classifier_matches_sklearn_macro() -> None:
    frame = log_frame(500, seed=21, classes=3)
    (report,) = compute_windows(frame, window="1h")
    rows = _labelled(frame, report.start_ms, report.end_ms)
    perf = report.versions[0].performance
    assert perf is not None
    y, p = rows["target"].to_numpy(), rows["output.predict"].to_numpy().astype(float)
    for name, fn in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        assert perf.metrics[name] == pytest.approx(fn(y, p, average="macro", zero_division=0))
    proba = rows[[f"output.predict_proba.{j}" for j in range(3)]].to_numpy()
    expected = metrics.roc_auc_score(y, proba, multi_class="ovr")
    assert perf.metrics["roc_auc"] == pytest.approx(expected)


def test_string_labels_from_target_label() -> None:
    frame = log_frame(120, seed=22)
    names = np.array(["no", "yes"], dtype=object)
    frame["output.predict"] = names[frame["output.predict"].to_numpy()]
    known = frame["target"].notna()
    frame["target_label"] = pd.Series(
        np.where(known, names[frame["target"].fillna(0).astype(int)], None), dtype=object
    )
    frame["target"] = np.nan
    (report,) = compute_windows(frame, window="1h")
    rows = frame[(frame["status"] == 200) & frame["target_label"].notna()]
    perf = report.versions[0].performance
    assert perf is not None
    assert perf.rows == len(rows)
    y, p = rows["target_label"].to_numpy(), rows["output.predict"].to_numpy()
    assert perf.metrics["f1"] == pytest.approx(metrics.f1_score(y, p, pos_label="yes"))
    score = rows["output.predict_proba.1"].to_numpy()
    assert perf.metrics["roc_auc"] == pytest.approx(metrics.roc_auc_score(y == "yes", score))


def test_regressor_per_window_matches_sklearn() -> None:
    rng = np.random.default_rng(23)
    frame = log_frame(300, seed=23, span_ms=2 * HOUR).drop(
        columns=["output.predict_proba.0", "output.predict_proba.1"]
    )
    frame["output.predict"] = rng.normal(10.0, 3.0, len(frame))
    frame["target"] = np.where(
        frame["target"].notna(), frame["output.predict"] + rng.normal(0, 1, len(frame)), np.nan
    )
    reports = compute_windows(frame, window="1h")
    for report in reports:
        rows = _labelled(frame, report.start_ms, report.end_ms)
        perf = report.versions[0].performance
        assert perf is not None
        assert perf.task == "regression"
        y, p = rows["target"].to_numpy(), rows["output.predict"].to_numpy()
        assert perf.metrics["rmse"] == pytest.approx(math.sqrt(metrics.mean_squared_error(y, p)))
        assert perf.metrics["mae"] == pytest.approx(metrics.mean_absolute_error(y, p))
        assert perf.metrics["r2"] == pytest.approx(metrics.r2_score(y, p))


def test_decay_against_offline_metrics_is_flagged_past_tolerance() -> None:
    frame = log_frame(300, seed=24)
    (report,) = compute_windows(
        frame,
        window="1h",
        offline={("churn", "1"): {"accuracy": 0.99, "f1": 0.5, "rmse": 1.0, "loss": 3.0}},
        tolerance=0.05,
    )
    version = report.versions[0]
    assert version.performance is not None
    assert version.decay is not None
    live = version.performance.metrics
    assert version.decay.offline == {"accuracy": 0.99, "f1": 0.5}
    assert version.decay.decay["accuracy"] == pytest.approx(0.99 - live["accuracy"])
    assert version.decay.degraded == ("accuracy",)


def test_decay_of_error_metrics_is_relative_and_positive_when_worse() -> None:
    result = decay({"rmse": 1.2, "mae": 1.04, "r2": 0.7}, {"rmse": 1.0, "mae": 1.0, "r2": 0.8})
    assert result.decay["rmse"] == pytest.approx(0.2)
    assert result.decay["r2"] == pytest.approx(0.1)
    assert set(result.degraded) == {"rmse", "r2"}  # mae grew 4 %, under 5 %
    assert decay({"accuracy": 0.9}, {"accuracy": math.nan}).decay == {}
    for bad in (-1, math.inf, "x", True):
        with pytest.raises(InvalidInput, match="tolerance"):
            decay({}, {}, tolerance=bad)  # type: ignore[arg-type]


def test_no_feedback_means_no_performance() -> None:
    frame = log_frame(50, seed=25, labelled=0.0)
    (report,) = compute_windows(frame, window="1h", offline={("churn", "1"): {"accuracy": 0.9}})
    version = report.versions[0]
    assert version.performance is None
    assert version.decay is None
    assert "feedback" in version.notes["performance"]


def test_roc_auc_is_absent_when_one_class_or_columns_do_not_match() -> None:
    one_class = performance([1, 1, 0], [1.0, 1.0, 1.0], proba=[[0.1, 0.9]] * 3)
    assert "roc_auc" not in one_class.metrics
    assert "roc_auc" in one_class.skipped
    mismatch = performance([0, 1, 2], [0.0, 1.0, 1.0], proba=[[0.2, 0.3, 0.5]] * 3)
    assert "roc_auc" not in mismatch.metrics
    without = performance(["a", "b"], ["a", "a"])
    assert "roc_auc" in without.skipped
    assert without.metrics["accuracy"] == 0.5


def test_performance_bad_input() -> None:
    with pytest.raises(InvalidInput, match="same length"):
        performance([1, 2], [1.0])
    with pytest.raises(InvalidInput, match="task"):
        performance([1], [1.0], task="ranking")
    with pytest.raises(InvalidInput, match="proba"):
        performance([1, 0], [1.0, 0.0], proba=[0.3, 0.7])
    with pytest.raises(InvalidInput, match="finite"):
        performance([np.nan, np.inf], [1.0, 2.0], task="regression")
    with pytest.raises(InvalidInput, match="numeric"):
        performance(["a"], ["b"], task="regression")
    with pytest.raises(InvalidInput, match="no row"):
        performance([None, "a"], [None, None], task="classification")
    single = performance([1.0], [2.0], task="regression")
    assert "r2" not in single.metrics
    assert single.metrics["rmse"] == pytest.approx(1.0)


def test_huge_and_hostile_values_stay_defined() -> None:
    big = performance([1e308, -1e308], [-1e308, 1e308], task="regression")
    assert all(math.isfinite(v) for v in big.metrics.values())
    text = performance(["<script>", "'; DROP"], ["<script>", "x"])
    assert text.metrics["accuracy"] == 0.5
    assert T0 > 0  # the support module's clock is a real 2026 hour
