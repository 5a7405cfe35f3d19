"""The distinct keys of an experiment's runs (the web UI's column picker), on every backend."""

from __future__ import annotations

import pytest

import keel
from keel.errors import NotFound
from keel.stores import current_stores

pytestmark = pytest.mark.usefixtures("backend")


def test_keys_are_distinct_sorted_and_limited_to_the_experiments_active_runs() -> None:
    with keel.start_run(experiment="keys", tags={"team": "a"}) as first:
        first.log_params({"lr": 0.1, "depth": 3})
        first.log_metrics({"loss": 0.5, "acc": 0.9}, step=1)
    with keel.start_run(experiment="keys", tags={"team": "b", "stage": "dev"}) as second:
        second.log_params({"lr": 0.2, "batch/size": 64})
        second.log_metric("val/loss", 0.7)
    with keel.start_run(experiment="keys") as gone:
        gone.log_metric("deleted_only", 1.0)
    with keel.start_run(experiment="other") as other:
        other.log_metric("elsewhere", 1.0)
        other.log_param("other_param", 1)
    tracking = current_stores().tracking
    tracking.delete_run(gone.run_id)

    keys = tracking.get_experiment_keys(first.info.experiment_id)

    assert keys.metrics == ("acc", "loss", "val/loss")
    assert keys.params == ("batch/size", "depth", "lr")
    assert set(keys.tags) >= {"stage", "team"}
    assert keys.to_dict()["metrics"] == ["acc", "loss", "val/loss"]


def test_an_experiment_without_runs_has_no_keys_and_an_unknown_one_is_not_found() -> None:
    empty = keel.create_experiment("empty")
    keys = current_stores().tracking.get_experiment_keys(empty.experiment_id)
    assert (keys.metrics, keys.params, keys.tags) == ((), (), ())
    with pytest.raises(NotFound, match="no experiment"):
        current_stores().tracking.get_experiment_keys("0" * 32)
