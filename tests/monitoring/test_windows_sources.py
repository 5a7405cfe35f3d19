"""Where a version's reference and offline metrics come from, on SQLite, PostgreSQL and REST."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from windows_support import HOUR, T0, log_frame, training_frame

from keel.monitoring import ReferenceProfile
from keel.monitoring.windows import compute_windows
from keel.monitoring.windows_sources import offline_metrics, references_for


def _register(*, log_dataset: bool, metrics: dict[str, float]) -> str:
    from sklearn.linear_model import LogisticRegression

    import keel

    X = training_frame(300)[["x", "y"]]
    y = (X["x"] > 0).astype(int)
    with keel.start_run(experiment="windows-sources") as run:
        if log_dataset:
            run.log_dataset(training_frame(300), context="training")
        if metrics:
            run.log_metrics(metrics)
        run.log_model(LogisticRegression().fit(X, y), "model", input_example=X.head(3))
    return str(keel.register_model(f"runs:/{run.run_id}/model", "churn").version)


def test_reference_and_offline_metrics_of_a_version(backend: Any) -> None:
    from keel.stores import current_stores

    with_ref = _register(log_dataset=True, metrics={"accuracy": 0.91, "f1": 0.88})
    without = _register(log_dataset=False, metrics={})
    stores = current_stores()
    ref = references_for(stores, "churn", with_ref)
    assert isinstance(ref, ReferenceProfile)
    assert set(ref.columns) == {"x", "y", "colour"}
    assert offline_metrics(stores, "churn", with_ref) == {"accuracy": 0.91, "f1": 0.88}
    reason = references_for(stores, "churn", without)
    assert isinstance(reason, str)
    assert "log_dataset" in reason
    assert offline_metrics(stores, "churn", without) == {}
    for model, version in (("churn", "99"), ("nobody", "1"), ("churn", "../1"), ("churn", "")):
        assert isinstance(references_for(stores, model, version), str)
        assert offline_metrics(stores, model, version) == {}
    # What the windows make of them: quality and decay for the version that has both.
    frame = log_frame(100, seed=50, version=with_ref)
    (report,) = compute_windows(
        frame,
        window="1h",
        start=T0,
        end=T0 + HOUR,
        references={("churn", with_ref): ref},
        offline={("churn", with_ref): offline_metrics(stores, "churn", with_ref)},
    )
    version = report.versions[0]
    assert version.quality is not None
    assert version.quality.schema_ok
    assert version.decay is not None
    assert set(version.decay.decay) == {"accuracy", "f1"}
    assert np.isfinite(version.decay.decay["accuracy"])


@pytest.mark.parametrize("window", ["1h", "1d"])
def test_window_reports_do_not_depend_on_row_order(window: str) -> None:
    frame = log_frame(200, seed=51, span_ms=3 * HOUR)
    shuffled = frame.sample(frac=1.0, random_state=3)
    a = [r.to_dict() for r in compute_windows(frame, window=window)]
    b = [r.to_dict() for r in compute_windows(shuffled, window=window)]
    assert a == b
