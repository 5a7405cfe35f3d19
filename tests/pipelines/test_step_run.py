"""A step's own run is the active run while it runs: what it logs and registers is traced
to its step run, on the local executor (worker processes) and inline alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import tracked_pipelines as tp

import keel
from keel.errors import Conflict


@pytest.mark.parametrize("executor", ["local", "inline"])
def test_what_a_step_logs_goes_to_its_own_run(home: Path, executor: str) -> None:
    run = tp.tracked.run({"n": 40}, executor=executor, max_workers=1)
    assert run.status == "finished"
    step = run.step("train")
    recorded = keel.get_run(step.run_id)
    assert 0.0 < recorded.metrics["train_accuracy"] <= 1.0
    assert recorded.params["solver"] == "lbfgs"
    assert recorded.params.keys() >= {"solver", "c"}

    version = keel.get_model_version("tracked-model", 1)
    assert version.run_id == step.run_id  # the model version is traced to the step run
    assert keel.load_step_output(run.run_id, "train") == recorded.metrics["train_accuracy"]

    children = keel.search_runs(run.pipeline, filter=f"attributes.parent_run_id = '{step.run_id}'")
    assert [c.name for c in children] == ["trial"]
    assert children[0].metrics == {"inner": 1.0}
    assert children[0].status.value == "finished"
    assert keel.active_run() is None  # nothing is left active in this process


def test_a_step_run_stays_the_engines_to_end(home: Path) -> None:
    run = tp.tracked.run({"n": 30}, executor="inline")
    step = keel.get_run(run.step("train").run_id)
    assert step.status.value == "finished"
    assert step.end_time is not None
    assert step.end_time >= step.start_time


def test_logging_to_an_attached_run_after_it_is_detached_is_refused(home: Path) -> None:
    from keel.tracking.fluent import attached_run

    with keel.start_run(run_name="outer") as outer:
        pass
    with attached_run(outer.run_id) as attached:
        attached.log_metric("during", 1.0)
        assert keel.active_run() is attached
    assert keel.active_run() is None
    with pytest.raises(Conflict):
        attached.log_metric("after", 2.0)
    assert keel.get_run(outer.run_id).metrics == {"during": 1.0}


def test_inside_an_outer_run_a_step_still_logs_to_its_own_run(home: Path) -> None:
    with keel.start_run(run_name="outer") as outer:
        run = tp.tracked.run({"n": 30}, executor="inline")
        assert keel.active_run() is outer  # the step's run was stacked above it, then left
    step = keel.get_run(run.step("train").run_id)
    assert "train_accuracy" in step.metrics
    assert keel.get_run(outer.run_id).metrics == {}


def test_a_pending_run_is_opened_only_when_asked_for(home: Path) -> None:
    from keel.tracking.fluent import pending_run

    with keel.start_run(run_name="target") as target:
        pass
    prepared: list[bool] = []
    with pending_run(target.run_id, lambda: prepared.append(True)):
        pass
    assert prepared == []  # nothing asked for the active run: nothing was opened
    with pending_run(target.run_id, lambda: prepared.append(True)):
        keel.log_metric("m", 2.0)
        assert keel.active_run().run_id == target.run_id
    assert prepared == [True]
    assert keel.active_run() is None
    assert keel.get_run(target.run_id).metrics == {"m": 2.0}
