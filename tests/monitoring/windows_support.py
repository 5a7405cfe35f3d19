"""Prediction-log frames of the contract's shape, for the windows and figures tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from keel.monitoring import profile

HOUR = 3_600_000
T0 = 1_790_000_000_000 - (1_790_000_000_000 % HOUR)  # an hour boundary in 2026


def training_frame(rows: int = 2_000, *, seed: int = 0) -> pd.DataFrame:
    """Inputs a model was trained on: two numbers and a colour."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(0.0, 1.0, rows),
            "y": rng.uniform(0.0, 10.0, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
        }
    )


def reference(seed: int = 0):
    return profile(training_frame(seed=seed))


def log_frame(
    requests: int,
    *,
    rows_per_request: int = 3,
    start_ms: int = T0,
    span_ms: int = HOUR,
    seed: int = 1,
    shift: float = 0.0,
    model: str = "churn",
    version: str = "1",
    error_every: int = 0,
    labelled: float = 1.0,
    classes: int = 2,
) -> pd.DataFrame:
    """A prediction log with feedback joined: ``requests`` requests spread over the span."""
    rng = np.random.default_rng(seed)
    n = requests * rows_per_request
    request_ids = np.repeat(
        [f"{model}-{version}-{seed}-{i}" for i in range(requests)], rows_per_request
    )
    times = np.repeat(start_ms + np.sort(rng.integers(0, span_ms, requests)), rows_per_request)
    latency = np.repeat(rng.gamma(2.0, 5.0, requests), rows_per_request)
    status = np.full(n, 200, dtype=np.int16)
    if error_every:
        failed = np.repeat(np.arange(requests) % error_every == 0, rows_per_request)
        status[failed] = 500
    x = rng.normal(shift, 1.0, n)
    proba = rng.dirichlet(np.ones(classes), n)
    predict = proba.argmax(axis=1).astype(np.int64)
    truth = np.where(rng.random(n) < 0.8, predict, rng.integers(0, classes, n)).astype(np.float64)
    truth[rng.random(n) >= labelled] = np.nan
    frame = pd.DataFrame(
        {
            "request_id": request_ids,
            "row": np.tile(np.arange(rows_per_request, dtype=np.int32), requests),
            "deployment": "churn-prod",
            "model": model,
            "version": version,
            "time_ms": times.astype(np.int64),
            "latency_ms": latency,
            "status": status,
            "error": np.where(status == 200, None, "model failed"),
            "sampled": True,
            "input.x": x,
            "input.y": rng.uniform(0.0, 10.0, n),
            "input.colour": rng.choice(["red", "green", "blue"], n),
            "output.predict": predict,
            **{f"output.predict_proba.{j}": proba[:, j] for j in range(classes)},
            "target": truth,
            "target_label": pd.Series([None] * n, dtype=object),
            "feedback_time_ms": np.where(np.isnan(truth), np.nan, times + 1000),
        }
    )
    failed = status != 200
    for col in ("input.x", "input.y", "output.predict_proba.0"):
        frame.loc[failed, col] = np.nan
    return frame
