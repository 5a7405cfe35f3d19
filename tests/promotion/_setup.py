"""Test helpers for promotions: real scikit-learn versions, hold-out data, environments.

``register_churn`` logs and registers three versions of "churn" on one synthetic binary
problem: v1 a depth-1 tree (weak), v2 a logistic regression (strong), v3 the weak tree
again; their runs log ``accuracy`` (measured on the training rows) and ``latency_ms``.
The hold-out rows are written to ``<project>/holdout.csv`` and ``holdout.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["CONFIG", "SERVER_HOME", "Churn", "register_churn", "write_config"]

CONFIG = """
[environments.prod]
description = "customers"

[environments.prod.deployment]
name = "{model}-prod"
strategy = "canary"
steps = [10, 100]
interval_s = 5

[environments.prod.gates]
metrics = ["accuracy >= 0.8", "latency_ms < 5"]
approvals = { count = 1, role = "editor" }

[environments.prod.gates.compare_champion]
metric = "accuracy"
min_improvement = 0.01
data = "holdout.csv"
target = "label"

[environments.staging]
alias = "staging"

[environments.staging.deployment]
name = "{model}-staging"
strategy = "blue-green"

[environments.strict.gates]
metrics = ["accuracy >= 0.999"]

[environments.nometric.gates]
metrics = ["f1 >= 0.5"]

[environments.champ.gates.compare_champion]
metric = "roc_auc"
data = "holdout.parquet"
target = "label"

[environments.two.gates]
approvals = 2

[environments.admins.gates]
approvals = { count = 1, role = "admin" }

[environments.badexpr.gates]
metrics = ["accuracy >>= 1"]

[environments.nofile.gates.compare_champion]
metric = "accuracy"
data = "missing/holdout.csv"
target = "label"

[environments.notarget.gates.compare_champion]
metric = "accuracy"
data = "holdout.csv"
target = "churned"
"""


@dataclass(frozen=True)
class Churn:
    """Where the hold-out data is, and the fitted models by version."""

    project: Path
    holdout: Any  # DataFrame with the label column
    models: dict[int, Any]


@lru_cache(maxsize=1)
def _problem() -> tuple[Any, Any, Any, Any]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(11)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=["f0", "f1", "f2", "f3"])
    y = ((X["f0"] + X["f1"] - 0.5 * X["f2"] + 0.3 * rng.normal(size=400)) > 0).astype(int)
    train, hold = slice(0, 300), slice(300, 400)
    weak = DecisionTreeClassifier(max_depth=1, random_state=0).fit(X[train], y[train])
    strong = LogisticRegression().fit(X[train], y[train])
    holdout = X[hold].assign(label=y[hold]).reset_index(drop=True)
    return weak, strong, X[train], holdout


def register_churn(project: Path) -> Churn:
    """Register churn v1 (weak), v2 (strong), v3 (weak); write the hold-out files."""
    import keel

    weak, strong, X, holdout = _problem()
    project.mkdir(parents=True, exist_ok=True)
    holdout.to_csv(project / "holdout.csv", index=False)
    holdout.to_parquet(project / "holdout.parquet", index=False)
    models = {1: weak, 2: strong, 3: weak}
    accuracy = {1: 0.85, 2: 0.93, 3: 0.85}
    for version, model in models.items():
        with keel.start_run(experiment="promotion-tests") as run:
            run.log_metrics({"accuracy": accuracy[version], "latency_ms": 1.5})
            run.log_model(model, "model", input_example=X.head(3))
        keel.register_model(f"runs:/{run.run_id}/model", "churn")
    return Churn(project, holdout, models)


# The live servers of the tests (tests/conftest.py's backend, tests/server) keep their home
# beside the client's under this name; a server promotes by the environments there.
SERVER_HOME = "server-home"


def write_config(home: Path, text: str = CONFIG) -> None:
    """Write ``text`` as the home's config.toml (and the test server's beside it, if one
    runs) and forget the cached settings."""
    from keel.config import reset_settings

    server = home.parent / SERVER_HOME
    for folder in (home, server) if server.is_dir() else (home,):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.toml").write_text(text, encoding="utf-8")
    reset_settings()
