"""CLI fixtures: a fresh Keel home per test, a ``keel`` runner, and logged runs and models."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import Cli, Logged, fresh_process

import keel


@pytest.fixture
def home(keel_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Yield a fresh Keel home (KEEL_HOME) with the working directory beside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))  # never touch the real ~/.keel
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: no cell is cut short
    monkeypatch.delenv("KEEL_DEBUG", raising=False)
    yield keel_env.home
    fresh_process()


@pytest.fixture
def cli(home: Path) -> Cli:
    """Return a ``keel`` runner working in the test's fresh home."""
    return Cli()


@pytest.fixture
def logged(home: Path) -> Logged:
    """Log two scikit-learn runs, register their models as "m" v1 and v2, and a NaN run."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    ids = []
    for c, accuracy, loss in ((0.1, 0.81, 0.52), (10.0, 0.93, 0.31)):
        with keel.start_run(experiment="churn", run_name=f"logreg-C{c}") as run:
            run.log_params({"C": c, "solver": "lbfgs"})
            run.log_metrics({"accuracy": accuracy, "log_loss": loss})
            run.log_dataset(X, name="train-features")
            model = LogisticRegression(C=c).fit(X, y)
            run.log_model(model, "model", input_example=X[:5])
        keel.register_model(f"runs:/{run.run_id}/model", "m")
        ids.append(run.run_id)
    with keel.start_run(experiment="churn", run_name="diverged") as run:
        run.log_params({"C": 1e9, "solver": "sgd"})
        run.log_metrics({"accuracy": math.nan, "log_loss": math.inf, "margin": -math.inf})
    return Logged(ids[0], ids[1], run.run_id)
