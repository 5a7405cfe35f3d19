"""Step records are buffered and written in batches, and still tell the truth in time:
a running step shows as running while it runs, a step that logs has its run, and a run
whose process died loses at most its unwritten records — resume re-runs those steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import record_pipelines as rp
import tracked_pipelines as tp
from sqlalchemy import event

import keel
import keel.pipelines as kp
from keel.errors import NotFound
from keel.pipelines import record_buffer
from keel.store.clock import now_ms
from keel.stores import current_stores

HERE = Path(__file__).parent


def _statuses(run: kp.PipelineRunInfo) -> dict[str, str]:
    return {s.node: s.status for s in run.steps}


def _step_status(name: str, node: str) -> str | None:
    """Return the status of step ``node`` in ``name``'s latest run as the store has it."""
    try:
        runs = kp.list_pipeline_runs(name)
        return kp.get_pipeline_run(runs[0].run_id).step(node).status if runs else None
    except NotFound:  # no experiment for the pipeline yet, or no record of the step yet
        return None


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_a_running_step_shows_as_running_while_it_runs(
    home: Path, tmp_path: Path, executor: str
) -> None:
    flag = tmp_path / "release"
    done: list[kp.PipelineRunInfo] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            done.append(rp.held.run({"flag": str(flag)}, executor=executor, max_workers=1))
        except BaseException as exc:  # reported below
            errors.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    try:
        seen = _wait_for_status("held_until", "running", runner.is_alive)
    finally:
        flag.touch()  # the step ends either way
        runner.join(120)
    assert seen  # read while the step was still running
    assert errors == []
    assert _statuses(done[0]) == {"first": "finished", "held_until": "finished"}


def _wait_for_status(node: str, status: str, alive: Callable[[], bool]) -> bool:
    """Return whether ``held``'s step ``node`` had ``status`` in the store while ``alive``."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and alive():
        if _step_status("held", node) == status:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_a_step_that_logs_creates_its_run_before_the_records_are_written(
    home: Path, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    monkeypatch.setattr(record_buffer, "FLUSH_DELAY", 600.0)  # nothing written before the end
    run = tp.tracked.run({"n": 30}, executor=executor, max_workers=1)
    step = run.step("train")
    recorded = keel.get_run(step.run_id)
    assert recorded.metrics["train_accuracy"] > 0
    assert recorded.params["solver"] == "lbfgs"
    assert recorded.params["c"] == "1.0"  # the step's own parameter, written by the engine
    assert recorded.tags["keel.status"] == "finished"
    assert recorded.status.value == "finished"
    assert recorded.parent_run_id == run.run_id
    assert keel.get_model_version("tracked-model", 1).run_id == step.run_id


def test_a_pipeline_writes_its_step_records_in_one_batch(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rp.fan.run({"n": 2}, executor="inline", no_cache=True)  # the experiment exists from now
    monkeypatch.setattr(record_buffer, "FLUSH_DELAY", 600.0)
    monkeypatch.setenv("KEEL_HEARTBEAT_INTERVAL", "3600")
    from keel.config import reset_settings

    reset_settings()
    engine = current_stores().tracking.db.engine  # type: ignore[attr-defined]
    writes: list[int] = []

    def count(conn: object) -> None:
        if conn.get_execution_options().get("keel_write"):  # type: ignore[attr-defined]
            writes.append(1)

    event.listen(engine, "begin", count)
    try:
        run = rp.fan.run({"n": 25}, executor="inline", no_cache=True)
    finally:
        event.remove(engine, "begin", count)
    # the pipeline run's start, then its end with all 25 step runs: two transactions
    assert len(writes) == 2
    assert _statuses(run) == {s.node: "finished" for s in run.steps}
    assert len(run.steps) == 25
    assert {s.params["i"] for s in run.steps} == {str(i) for i in range(25)}
    assert all(s.cache_key and s.end_time >= s.start_time for s in run.steps)


def _kill_held_run(tmp_path: Path, delay: float, *, when_visible: bool) -> str:
    """Run ``held`` in a process that is killed while its second step runs; return its id.

    The step is killed once the store shows it running (``when_visible``), or once it has
    started (nothing written may have reached the store by then).
    """
    flag = tmp_path / "release"
    script = (
        "import keel.pipelines.record_buffer as rb; "
        f"rb.FLUSH_DELAY = {delay}; "
        "import record_pipelines as rp; "
        f"rp.held.run({{'flag': {str(flag)!r}}}, executor='local', max_workers=1)"
    )
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": path},
        start_new_session=True,  # its own process group: its workers die with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started = Path(f"{flag}.started")
    try:
        if when_visible:
            assert _wait_for_status("held_until", "running", lambda: process.poll() is None)
        else:
            deadline = time.monotonic() + 90
            while not started.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
        assert started.exists(), process.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        process.stderr.close()  # type: ignore[union-attr]
    flag.touch()  # from now on the step ends at once
    (killed,) = kp.list_pipeline_runs("held")
    assert killed.status == "running"  # its process died: nobody ended it
    # its heartbeats stopped: the stale-run collector fails it (as any later run would)
    current_stores().tracking.fail_stale_runs(now_ms() + 3_600_000, 1000)
    return killed.run_id


def test_resume_after_a_crash_reruns_the_steps_whose_records_were_lost(
    home: Path, tmp_path: Path
) -> None:
    run_id = _kill_held_run(tmp_path, 600.0, when_visible=False)  # no step record written
    crashed = kp.get_pipeline_run(run_id)
    assert crashed.status == "failed"
    assert crashed.steps == []
    resumed = kp.resume_pipeline(run_id, executor="inline")
    assert resumed.status == "finished"
    assert _statuses(resumed) == {"first": "finished", "held_until": "finished"}
    assert kp.load_step_output(resumed.run_id, "held_until") == 2


def test_resume_after_a_crash_reuses_the_steps_whose_records_were_written(
    home: Path, tmp_path: Path
) -> None:
    run_id = _kill_held_run(tmp_path, record_buffer.FLUSH_DELAY, when_visible=True)
    crashed = kp.get_pipeline_run(run_id)
    assert crashed.status == "failed"
    assert _statuses(crashed) == {"first": "finished", "held_until": "failed"}  # writer died
    resumed = kp.resume_pipeline(run_id, executor="inline")
    assert resumed.status == "finished"
    assert _statuses(resumed) == {"first": "cached", "held_until": "finished"}
    assert resumed.step("first").cached_from == crashed.step("first").run_id
    assert kp.load_step_output(resumed.run_id, "held_until") == 2
