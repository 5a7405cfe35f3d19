"""A monitored home for the report tests: 24 hours of logged traffic, drifted in the last 12.

``seed_traffic`` writes, through the real prediction logger, one batch of requests per hour
of the day before ``END`` to a deployment of ``cancer`` version 1 (``monitor_live_support``:
a version with a training profile and offline metrics): the model's own predictions on
breast-cancer rows, every 10th request failing, feedback with the true labels. From hour
12 on the inputs are shifted (every feature times 3), so drift starts half-way through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

HOUR = 3_600_000
END = 1_790_000_000_000 - (1_790_000_000_000 % HOUR)  # an hour boundary in 2026
PER_HOUR, ROWS = 6, 4
DRIFT_FROM_HOUR = 12


@dataclass(frozen=True)
class Traffic:
    """What was logged: the deployment, the window's bounds, request ids by hour."""

    deployment: str
    start_ms: int
    end_ms: int
    requests: int
    failed: int


def seed_traffic(
    home: Any, deployment: str, *, drift: bool = True, hours: int = 24, end_ms: int = END
) -> Traffic:
    """Log ``hours`` hours of traffic (and feedback) for ``deployment`` before ``end_ms``;
    see the module doc."""
    import keel
    from keel.monitoring import log_feedback
    from keel.monitoring.prediction_log import logger_from_settings
    from keel.stores import current_stores

    keel.create_deployment(deployment, "models:/cancer/1")
    logger = logger_from_settings(current_stores(), enabled=True, flush_interval=3600)
    assert logger is not None
    rng = np.random.default_rng(5)
    X = home.X.to_numpy(dtype=np.float64)
    y = home.y.to_numpy()
    start = end_ms - hours * HOUR
    ids, labels, rows_of, failed, n = [], [], [], 0, 0
    for h in range(hours):
        for i in range(PER_HOUR):
            pick = rng.integers(0, len(X), ROWS)
            batch = X[pick] * (3.0 if drift and h >= DRIFT_FROM_HOUR else 1.0)
            request_id = f"{deployment}-{h}-{i}"
            status = 500 if n % 10 == 0 else 200
            n += 1
            frame = pd.DataFrame(batch, columns=home.X.columns)
            predicted = home.model.predict(frame).astype(np.int64)
            logger.record(
                deployment=deployment,
                model="cancer",
                version="1",
                request_id=request_id,
                time_ms=int(start + h * HOUR + i * (HOUR // PER_HOUR) + 1_000),
                latency_ms=float(rng.gamma(2.0, 5.0)),
                status=status,
                rows=ROWS,
                error=None if status == 200 else "model failed",
                inputs={c: batch[:, j] for j, c in enumerate(home.X.columns)}
                if status == 200
                else None,
                outputs={"predict": predicted},
                sampled=True,
            )
            if status == 200:
                ids += [request_id] * ROWS
                labels += y[pick].astype(float).tolist()
                rows_of += list(range(ROWS))
            else:
                failed += 1
    logger.close()
    log_feedback(deployment, ids, labels, row=rows_of)
    return Traffic(deployment, start, end_ms, n, failed)


ALERT_RULE = "churn-drift"


def seed_report_home(path: Any) -> dict[str, Any]:
    """Build the home: ``churn-prod`` (drifts, with a fired alert) and ``calm-prod``."""
    from tests.monitoring.monitor_live_support import build_home, keel_home

    from keel.monitoring.alerts import add_alert_rule
    from keel.monitoring.alerts.runner import run_pass
    from keel.stores import current_stores

    home = build_home(path)
    with keel_home(home.path):
        churn = seed_traffic(home, "churn-prod", drift=True)
        calm = seed_traffic(home, "calm-prod", drift=False)
        add_alert_rule(
            ALERT_RULE, deployment="churn-prod", metric="drift_share", op=">",
            threshold=0.3, window="1h",
        )  # fmt: skip
        passed = run_pass(current_stores(), now=END - 60_000)  # a real pass fires it
        assert not passed.errors, passed.errors
    return {"home": home, "churn": churn, "calm": calm}


def register_cancer() -> Any:
    """Fit, log and register ``cancer`` version 1 on the current stores (any backend), as
    ``monitor_live_support.build_home`` does in a home of its own; return a ``Home``."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from tests.monitoring.monitor_live_support import COLUMNS, Home

    import keel

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :COLUMNS]
    X.columns = [f"f{j}" for j in range(COLUMNS)]
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with keel.start_run(experiment="monitoring-report") as run:
        run.log_dataset(X, context="training")
        run.log_metric("accuracy", accuracy_score(y, model.predict(X)))
        run.log_model(model, "model", input_example=X.head(5))
    keel.register_model(f"runs:/{run.run_id}/model", "cancer")
    return Home(None, model, X, y)
