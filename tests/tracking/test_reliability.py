"""Concurrent writers and crashed writers on one SQLite store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import keel
from keel.tracking.entities import RunStatus

WRITER = textwrap.dedent(
    """
    import sys, keel
    worker, points = int(sys.argv[1]), int(sys.argv[2])
    with keel.start_run(experiment="shared", run_name=f"worker-{worker}") as run:
        run.log_params({"worker": worker, "points": points})
        for step in range(points):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.log_metric("worker", float(worker), step=step)
            if step % 500 == 0:
                run.set_tag("progress", str(step))
    print(run.run_id)
    """
)


def test_eight_processes_logging_at_once_lose_nothing(keel_env, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "KEEL_HOME": str(keel_env.home), "KEEL_METRIC_FLUSH_INTERVAL": "0.05"}
    points = 3000
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(worker), str(points)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(8)
    ]
    results = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
    run_ids = [out.strip() for out, _ in results]

    runs = keel.search_runs(experiment="shared", max_results=100)
    assert sorted(r.run_id for r in runs) == sorted(run_ids)
    for run in runs:
        assert run.status is RunStatus.FINISHED
        assert run.params["points"] == str(points)
        history = keel.get_metric_history(run.run_id, "loss")
        assert [m.step for m in history] == list(range(points))
        worker = int(run.params["worker"])
        assert {m.value for m in keel.get_metric_history(run.run_id, "worker")} == {worker}


VICTIM = textwrap.dedent(
    """
    import sys, time, keel
    run = keel.start_run(experiment="doomed")
    for step in range(1000):
        run.log_metric("loss", float(step), step=step)
    run.flush()
    print(run.run_id, flush=True)
    for step in range(1000, 10**9):  # keeps logging, unflushed, until killed
        run.log_metric("loss", float(step), step=step)
        if step % 1000 == 0:
            time.sleep(0.001)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_writer_killed_mid_run_leaves_a_readable_store(keel_env, tmp_path: Path) -> None:
    script = tmp_path / "victim.py"
    script.write_text(VICTIM)
    env = {**os.environ, "KEEL_HOME": str(keel_env.home), "KEEL_METRIC_FLUSH_INTERVAL": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        run_id = proc.stdout.readline().strip()
        time.sleep(0.5)  # let it write more batches, and be mid-way through others
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()

    run = keel.get_run(run_id)  # the store opens and reads
    assert run.status is RunStatus.RUNNING
    history = keel.get_metric_history(run_id, "loss")
    steps = [m.step for m in history]
    assert steps[:1000] == list(range(1000))  # everything flushed before the kill survived
    assert steps == list(range(len(steps)))  # and what was written after is a clean prefix

    assert keel.gc_runs(timeout=3600) == []  # its heartbeat is recent: still presumed alive
    assert keel.gc_runs(timeout=0) == [run_id]
    assert keel.get_run(run_id).status is RunStatus.FAILED


OPEN_AT_EXIT = textwrap.dedent(
    """
    import sys, keel
    run = keel.start_run(experiment="left-open")
    print(run.run_id, flush=True)
    for step in range(2000):
        run.log_metric("loss", float(step), step=step)
    if sys.argv[1] == "crash":
        raise RuntimeError("the script died with its run open")
    """
)


@pytest.mark.parametrize(("mode", "status"), [("exit", "finished"), ("crash", "failed")])
def test_a_run_left_open_is_flushed_and_ended_at_interpreter_exit(
    keel_env, tmp_path: Path, mode: str, status: str
) -> None:
    script = tmp_path / "open.py"
    script.write_text(OPEN_AT_EXIT)
    env = {**os.environ, "KEEL_HOME": str(keel_env.home), "KEEL_METRIC_FLUSH_INTERVAL": "60"}
    done = subprocess.run(
        [sys.executable, str(script), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == (0 if mode == "exit" else 1), done.stderr
    run_id = done.stdout.split()[0]
    # The flush interval (60 s) never elapsed: only the exit hook can have written these.
    assert len(keel.get_metric_history(run_id, "loss")) == 2000
    assert keel.get_run(run_id).status == RunStatus(status)


IDLE_AFTER_LOGGING = textwrap.dedent(
    """
    import time, keel
    run = keel.start_run(experiment="timer")
    for step in range(100):
        run.log_metric("loss", float(step), step=step)
    print(run.run_id, flush=True)
    time.sleep(120)  # no flush, no end: only the background timer can write the points
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_buffered_metrics_are_written_by_the_timer_while_the_run_is_open(
    keel_env, tmp_path: Path
) -> None:
    script = tmp_path / "idle.py"
    script.write_text(IDLE_AFTER_LOGGING)
    env = {**os.environ, "KEEL_HOME": str(keel_env.home), "KEEL_METRIC_FLUSH_INTERVAL": "0.05"}
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        run_id = proc.stdout.readline().strip()
        deadline = time.monotonic() + 30
        steps: list[int] = []
        while time.monotonic() < deadline and len(steps) < 100:
            time.sleep(0.1)
            steps = [m.step for m in keel.get_metric_history(run_id, "loss")]
        assert proc.poll() is None  # still running: no end-of-run or exit flush happened
    finally:
        proc.kill()  # SIGKILL: no exit hook runs
        proc.wait(timeout=30)
        proc.stdout.close()
    assert steps == list(range(100))
