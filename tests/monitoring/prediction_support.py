"""Helpers for the prediction-log tests: a home with a registered model, OIP bodies.

``build_home`` makes a Keel home outside any test (module fixtures share it), fits a
``StandardScaler + LogisticRegression`` on breast_cancer's first 8 columns and registers
it as ``cancer`` versions 1 and 2 (version 2 fitted with C=0.1, so the versions differ).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import _reset

COLUMNS = 8


@dataclass(frozen=True)
class Home:
    """The home, the two fitted versions (by version number) and the training frame."""

    path: Path
    models: dict[int, Any]
    X: Any
    y: Any


@contextmanager
def keel_home(path: Path, **env: str) -> Iterator[Path]:
    """Point Keel at the home in ``path`` (and the extra ``KEEL_*`` env) for the block."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(path))
        for name in ("KEEL_TRACKING_URI", "KEEL_ARTIFACT_URI", "KEEL_PREDICTION_LOG", "KEEL_AUTH"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        _reset()
        try:
            yield path
        finally:
            _reset()


def build_home(path: Path) -> Home:
    """Fit and register ``cancer`` versions 1 and 2 in a new home at ``path``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import keel

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :COLUMNS]
    X.columns = [f"f{j}" for j in range(COLUMNS)]
    models = {}
    with keel_home(path):
        for version, c in ((1, 1.0), (2, 0.1)):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
            model.fit(X, y)
            with keel.start_run(experiment="prediction-log") as run:
                run.log_model(model, "model", input_example=X.head(5))
            keel.register_model(f"runs:/{run.run_id}/model", "cancer")
            models[version] = model
    return Home(path, models, X, y)


def oip_body(X: Any, start: int, n: int, *, request_id: str | None = None) -> dict[str, Any]:
    """An OIP request of rows ``start:start+n`` as one FP64 tensor per column."""
    rows = X.iloc[start : start + n]
    body: dict[str, Any] = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [n], "data": rows[c].tolist()}
            for c in X.columns
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    return body
