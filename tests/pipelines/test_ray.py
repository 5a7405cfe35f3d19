"""The ``ray`` executor against a local Ray instance (one for the whole session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sample_pipelines as sp
from tests.conftest import RAY_GROUP

import keel.pipelines as kp
from keel.errors import InvalidInput

ray = pytest.importorskip("ray", reason="the ray tests need the ray extra")
pytestmark = [pytest.mark.ray, pytest.mark.xdist_group(RAY_GROUP)]


@pytest.fixture(autouse=True)
def local_ray(ray_cluster: Any) -> None:
    """Run on the suite's one local Ray instance (see ``ray_cluster``)."""


def statuses(run: kp.PipelineRunInfo) -> dict[str, str]:
    return {s.node: s.status for s in run.steps}


def test_the_same_pipeline_runs_and_caches_on_ray(home: Path) -> None:
    first = sp.arithmetic.run({"x": 2, "y": 3}, executor="ray")
    assert set(statuses(first).values()) == {"finished"}
    assert kp.load_step_output(first.run_id, "add-2") == 10
    local = sp.arithmetic.run({"x": 2, "y": 3}, executor="local", max_workers=1)
    assert set(statuses(local).values()) == {"cached"}  # one cache for every executor


def test_resources_failures_and_infeasible_steps_on_ray(home: Path) -> None:
    run = sp.on_ray.run(executor="ray", raise_on_failure=False)
    assert statuses(run) == {
        "ray_resources": "finished", "number": "finished", "boom": "failed", "add": "skipped",
        "needs_gpus": "failed",
    }  # fmt: skip
    assert kp.load_step_output(run.run_id, "ray_resources") == {"tag": "a", "cpu": 0.5}
    assert "ValueError: boom on 1" in (run.step("boom").error or "")
    assert "gpus=8" in (run.step("needs_gpus").error or "")


def test_a_step_past_its_timeout_is_cancelled_on_ray(home: Path) -> None:
    run = sp.slow.run(executor="ray", raise_on_failure=False)
    assert statuses(run) == {"sleepy": "failed", "number": "finished"}
    assert "timeout of 1 s" in (run.step("sleepy").error or "")


def test_an_address_is_only_for_ray(home: Path) -> None:
    with pytest.raises(InvalidInput, match="address is for the ray executor"):
        sp.arithmetic.run(executor="local", address="ray://nowhere:10001")
