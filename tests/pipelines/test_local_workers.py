"""The local executor's worker processes: what they inherit and how steps travel to them."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import worker_steps as ws

import keel.pipelines as kp
from keel.pipelines import load_step_output


def test_each_run_s_workers_see_the_environment_as_it_is_then(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Workers are forked from a server started once per process: they must still see the
    # environment of the moment they start, not the server's.
    for _ in range(2):
        mark = uuid.uuid4().hex
        monkeypatch.setenv("KEEL_TEST_MARK", mark)
        run = ws.sees_env.run(executor="local", no_cache=True)
        assert load_step_output(run.run_id, "env_value") == mark


def test_workers_run_in_the_working_directory_in_processes_of_their_own(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = ws.sees_cwd.run({"n": 2}, executor="local", no_cache=True)
    seen = [load_step_output(run.run_id, s.node) for s in run.steps]
    assert {s["cwd"] for s in seen} == {str(elsewhere)}
    assert os.getpid() not in {s["pid"] for s in seen}


def test_a_step_made_inside_a_function_travels_by_value(home: Path) -> None:
    offset = 41

    @kp.step
    def shifted(x: int) -> int:
        return x + offset  # a closure: the standard pickler cannot send it, cloudpickle can

    @kp.pipeline(name="closure_steps")
    def closure_steps():
        shifted(1)

    run = closure_steps.run(executor="local", no_cache=True)
    assert run.status == "finished"
    assert load_step_output(run.run_id, "shifted") == 42
