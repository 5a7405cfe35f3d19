"""``TrackingStore.get_run_snapshot``: a run, its inputs and its files, read at once."""

from __future__ import annotations

import math

import pytest

import keel
from keel.errors import NotFound
from keel.stores import current_stores

pytestmark = pytest.mark.usefixtures("backend")


def _snapshot_run() -> str:
    np = pytest.importorskip("numpy")
    with keel.start_run(experiment="snap", run_name="snapshot") as run:
        run.log_params({"alpha": "0.1", "depth": "3"})
        run.set_tags({"team": "risk"})
        run.log_metrics({"exact": 0.1 + 0.2, "nan": math.nan, "up": math.inf, "down": -math.inf})
        run.log_metric("loss", 0.9, step=0)
        run.log_metric("loss", 0.25, step=3)
        run.log_dataset(np.ones((4, 2)), name="features", context="training", source="s3://b/x")
        run.log_dataset(np.zeros((2, 2)), name="holdout", context="validation")
        run.log_text("a", "model/keel-model.json")
        run.log_text("b", "model/sub/weights.bin")
        run.log_text("c", "model_2/other.txt")  # "_" must not match as a LIKE wildcard
        run.log_text("d", "modelx/other.txt")
        run.log_text("e", "notes.txt")
    return run.run_id


def _same(a: object, b: object) -> bool:
    # NaN != NaN: compare metric dicts by their repr-able values
    return repr(a) == repr(b)


def test_a_snapshot_is_get_run_get_inputs_and_list_artifacts_at_once() -> None:
    run_id = _snapshot_run()
    tracking = current_stores().tracking
    for prefix in (None, "model", "model/", "model/sub", "model_2", "notes.txt", "absent"):
        snapshot = tracking.get_run_snapshot(run_id, prefix)
        assert _same(snapshot.run, tracking.get_run(run_id))
        assert snapshot.inputs == tracking.get_inputs(run_id)
        assert snapshot.artifacts == tracking.list_artifacts(run_id, prefix), prefix
    snapshot = tracking.get_run_snapshot(run_id, "model")
    assert [a.path for a in snapshot.artifacts] == [
        "model/keel-model.json",
        "model/sub/weights.bin",
    ]
    run = snapshot.run
    assert run.params == {"alpha": "0.1", "depth": "3"}
    assert run.tags["team"] == "risk"
    assert run.metrics["exact"] == 0.1 + 0.2
    assert math.isnan(run.metrics["nan"])
    assert (run.metrics["up"], run.metrics["down"], run.metrics["loss"]) == (
        math.inf,
        -math.inf,
        0.25,
    )
    assert {(i.name, i.context) for i in snapshot.inputs} == {
        ("features", "training"),
        ("holdout", "validation"),
    }


def test_a_snapshot_of_a_bare_run_is_empty_and_of_an_unknown_run_not_found() -> None:
    with keel.start_run(experiment="snap") as run:
        pass
    tracking = current_stores().tracking
    snapshot = tracking.get_run_snapshot(run.run_id, "model")
    assert (snapshot.run.run_id, snapshot.inputs, snapshot.artifacts) == (run.run_id, [], [])
    assert (snapshot.run.params, snapshot.run.metrics) == ({}, {})
    with pytest.raises(NotFound, match="no run"):
        tracking.get_run_snapshot("0" * 32, "model")
