"""A Keel home with a monitored model, and a live keel server on 127.0.0.1 serving it.

``build_home`` fits ``StandardScaler + LogisticRegression`` on breast_cancer's first 8
columns (renamed f0..f7), logs the training frame (so the version has a drift reference)
and its offline accuracy and F1 on the run, and registers it as ``cancer`` version 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.monitoring.prediction_support import keel_home

COLUMNS = 8
WAIT_S = 60.0


@dataclass(frozen=True)
class Home:
    """The home, the fitted model, the training inputs and labels."""

    path: Path
    model: Any
    X: Any
    y: Any


def build_home(path: Path) -> Home:
    """Fit, log and register ``cancer`` version 1 in a new home at ``path``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import keel

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :COLUMNS]
    X.columns = [f"f{j}" for j in range(COLUMNS)]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with keel_home(path):
        with keel.start_run(experiment="monitoring-windows") as run:
            run.log_dataset(X, context="training")
            predicted = model.predict(X)
            run.log_metrics(
                {"accuracy": accuracy_score(y, predicted), "f1": f1_score(y, predicted)}
            )
            run.log_model(model, "model", input_example=X.head(5))
        keel.register_model(f"runs:/{run.run_id}/model", "cancer")
    return Home(path, model, X, y)


def oip_body(X: Any, start: int, n: int) -> dict[str, Any]:
    """An OIP request of rows ``start:start+n`` as one FP64 tensor per column."""
    rows = X.iloc[start : start + n]
    return {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [n], "data": rows[c].tolist()}
            for c in X.columns
        ]
    }


def deploy(client: httpx.Client, name: str, X: Any) -> None:
    """Create deployment ``name`` of models:/cancer/1 and wait (bounded) until it answers."""
    created = client.post("/api/v1/deployments", json={"name": name, "model": "models:/cancer/1"})
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = client.post(f"/v2/models/{name}/infer", json=oip_body(X, 0, 1))
        if answer.status_code == 200:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"deployment {name} did not answer within {WAIT_S:.0f} s: {answer.text}")
        time.sleep(0.05)
