"""A registered model version carries its training data's drift reference (via its run)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.monitoring.conftest import make_frame

import keel
from keel.errors import InvalidInput, NotFound
from keel.monitoring import ReferenceProfile, drift, profile, reference_profile


@pytest.fixture
def registered(keel_env: Any) -> tuple[str, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    train = make_frame(3000, seed=1)
    features = train[["x", "y", "level"]]
    model = LogisticRegression().fit(features, train.flag)
    with keel.start_run(experiment="monitoring") as run:
        run.log_dataset(train, name="train", context="training")
        run.log_dataset(train.iloc[:10], name="holdout", context="validation")
        run.log_model(model, "model", input_example=features[:3])
    keel.register_model(f"runs:/{run.run_id}/model", "churn")
    keel.set_alias("churn", "champion", 1)
    return run.run_id, train


def test_the_version_carries_the_training_profile(registered: tuple[str, pd.DataFrame]) -> None:
    run_id, train = registered
    stored = reference_profile("models:/churn/1")
    assert stored == ReferenceProfile.from_dict(
        profile(train, quantiles=101, max_categories=200).to_dict()
    )
    assert reference_profile("models:/churn@champion") == stored
    assert reference_profile(f"runs:/{run_id}/model") == stored
    assert reference_profile("models:/churn/1", context="validation").rows == 10
    cur = make_frame(2000, seed=2, shift=1.0, new_category=True)
    report = drift(stored, cur)
    assert report.dataset_drifted
    assert {c.column for c in report.columns if c.drifted} == {"x", "y", "colour"}
    assert not drift(stored, make_frame(2000, seed=5)).dataset_drifted


def test_missing_references_are_not_found(registered: tuple[str, pd.DataFrame]) -> None:
    with pytest.raises(NotFound, match="no test dataset"):
        reference_profile("models:/churn/1", context="test")
    with pytest.raises(NotFound):
        reference_profile("models:/nope/1")
    with pytest.raises(InvalidInput):
        reference_profile("s3://bucket/model")
    with pytest.raises(InvalidInput, match="context"):
        reference_profile("models:/churn/1", context="")


def test_an_array_dataset_has_no_reference(keel_env: Any) -> None:
    with keel.start_run(experiment="monitoring") as run:
        run.log_dataset(np.ones((5, 2)), name="arr", context="training")
    with pytest.raises(NotFound, match="without a drift profile"):
        reference_profile(f"runs:/{run.run_id}/model")
