"""Executors: a pool of worker processes, or this process for debugging.

The ``local`` executor keeps up to ``size`` worker processes and reuses them from step to
step, so a worker's start-up is paid once per run, not per step. Workers are forked from a
``forkserver``: one clean process per Python process, started on first use, which has
imported what every worker needs (``_PRELOAD``) and holds no locks, threads or database
connections — so a worker starts in tens of milliseconds instead of the ~0.3–1 s of a
fresh interpreter (``spawn``, still used where there is no forkserver). As with ``spawn``,
each worker imports the main module and the steps' modules itself, fresh, and takes this
process's environment, working directory and ``sys.path`` at the time it starts.

Each worker has its own pipe, so a step that overruns its timeout is stopped by terminating
its worker alone (a fresh one replaces it on demand), and a worker that dies (a segfault,
``os._exit``) fails only its step — ``concurrent.futures.ProcessPoolExecutor`` can do
neither without breaking the whole pool.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from typing import Any

import cloudpickle

from keel.errors import InvalidInput
from keel.pipelines.worker import StepResult, StepTask, execute, worker_main

__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "ProcessExecutor", "open_executor"]

EXECUTORS = ("local", "ray", "inline")
# What every worker imports before its first step: loaded once, in the forkserver.
_PRELOAD = ("cloudpickle", "keel.pipelines.worker", "keel.store.artifacts", "keel.tracking.fluent")
_context: BaseContext | None = None
_context_lock = threading.Lock()


def worker_context() -> BaseContext:
    """Return the multiprocessing context workers start in: forkserver, else spawn."""
    global _context
    with _context_lock:
        if _context is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(list(_PRELOAD))
            else:
                context = multiprocessing.get_context("spawn")
            _context = context
        return _context


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: StepTask | None = None
    deadline: float | None = None
    served: bool = False  # it has returned a result (so it did start up)


class Executor(ABC):
    """Runs step tasks; the engine submits when a slot is free and collects results."""

    #: True when tasks run on this machine and write the files this process sees, so the
    #: engine can make their outputs durable itself, in groups (keel.pipelines.durable).
    shares_files: bool = False

    @property
    @abstractmethod
    def free_slots(self) -> int:
        """How many more tasks can start now."""

    @abstractmethod
    def submit(self, task: StepTask, timeout: float | None) -> None:
        """Start ``task``; it must finish within ``timeout`` seconds (None: no limit)."""

    @abstractmethod
    def collect(self, wait_at_most: float) -> list[StepResult]:
        """Return results that are ready, waiting up to ``wait_at_most`` seconds for one."""

    @abstractmethod
    def close(self) -> None:
        """Stop every worker (running tasks are abandoned)."""


class ProcessExecutor(Executor):
    """Runs each task in one of up to ``size`` reusable spawned worker processes."""

    shares_files = True

    def __init__(self, size: int) -> None:
        self._size = size
        self._ctx = worker_context()
        self._workers: list[_Worker] = []
        self._pending: list[StepResult] = []

    @property
    def free_slots(self) -> int:
        busy = sum(1 for w in self._workers if w.task is not None)
        return self._size - busy

    def _idle_worker(self) -> _Worker:
        for worker in self._workers:
            if worker.task is None:
                return worker
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(child, dict(os.environ)),  # a forked worker has the server's environment
            name="keel-step-worker",
            daemon=True,
        )
        process.start()
        child.close()
        worker = _Worker(process, parent)
        self._workers.append(worker)
        return worker

    def submit(self, task: StepTask, timeout: float | None) -> None:
        worker = self._idle_worker()
        payload = _dumps(task)
        worker.task = task
        worker.deadline = None if timeout is None else time.monotonic() + timeout
        try:
            worker.conn.send_bytes(payload)
        except OSError:
            self._pending.append(
                self._lost(worker, "its worker process was gone before it started")
            )

    def collect(self, wait_at_most: float) -> list[StepResult]:
        if self._pending:
            ready, self._pending = self._pending, []
            return ready
        busy = [w for w in self._workers if w.task is not None]
        if not busy:
            return []
        now = time.monotonic()
        deadlines = [w.deadline - now for w in busy if w.deadline is not None]
        limit = max(0.0, min([wait_at_most, *deadlines]))
        by_conn = {w.conn: w for w in busy}
        by_sentinel = {w.process.sentinel: w for w in busy}
        results = []
        done: list[_Worker] = []
        for ready in wait([*by_conn, *by_sentinel], timeout=limit):
            worker = by_conn.get(ready) or by_sentinel.get(ready)  # type: ignore[call-overload]
            if worker is not None and worker not in done:
                done.append(worker)  # its pipe and its sentinel can both be ready
        for worker in done:
            try:
                if worker.conn.poll():  # a result, even from a worker that exited since
                    results.append(pickle.loads(worker.conn.recv_bytes()))
                    worker.task, worker.deadline, worker.served = None, None, True
                    continue
            except (EOFError, OSError):
                pass
            worker.process.join(1)
            code = worker.process.exitcode
            why = f"its worker process died (exit code {code})"
            if not worker.served:  # most often: a script that runs its pipeline unguarded
                why += (
                    " before running anything; a script that runs a pipeline must do it under "
                    '`if __name__ == "__main__":`, since workers import the main module'
                )
            results.append(self._lost(worker, why))
        now = time.monotonic()
        for worker in busy:
            if worker.task is not None and worker.deadline is not None and now >= worker.deadline:
                if worker not in self._workers:
                    continue
                results.append(self._lost(worker, "it timed out", timed_out=True))
        return results

    def _lost(self, worker: _Worker, why: str, *, timed_out: bool = False) -> StepResult:
        task = worker.task
        if task is None:  # only busy workers are lost
            raise RuntimeError("an idle worker has no step to fail")
        if timed_out:
            limit = task.step.options.timeout
            why = f"it ran longer than its timeout of {limit:g} s and was stopped"
        self._stop(worker)
        worker.task = None
        now = time.time_ns() // 1_000_000
        return StepResult(task.node_id, None, why, None, "", now, now)

    def _stop(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.conn.close()
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
        worker.process.join(1)

    def close(self) -> None:
        for worker in list(self._workers):
            if worker.task is None:
                worker.conn.close()  # an idle worker exits when its pipe closes
                worker.process.join(2)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(2)
        self._workers.clear()


def _dumps(task: StepTask) -> bytes:
    # The standard pickler is ~3x faster and enough for most tasks: a module-level step
    # travels by name. A step made inside a function (a closure) needs cloudpickle.
    try:
        return pickle.dumps(task, protocol=5)
    except (pickle.PicklingError, AttributeError, TypeError):
        return cloudpickle.dumps(task, protocol=5)


class InlineExecutor(Executor):
    """Runs each task in this process, one at a time (for debugging: timeouts are not enforced)."""

    shares_files = True

    def __init__(self) -> None:
        self._done: list[StepResult] = []

    @property
    def free_slots(self) -> int:
        return 1

    def submit(self, task: StepTask, timeout: float | None) -> None:
        self._done.append(execute(task))

    def collect(self, wait_at_most: float) -> list[StepResult]:
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._done.clear()


def open_executor(name: str, max_workers: int | None, *, address: str | None = None) -> Executor:
    """Return the executor called ``name``: ``local``, ``ray`` (at ``address``) or ``inline``."""
    if max_workers is not None and (type(max_workers) is not int or not 1 <= max_workers <= 256):
        raise InvalidInput("max_workers must be an integer from 1 to 256")
    if address is not None and name != "ray":
        raise InvalidInput(f"an address is for the ray executor, not {name!r}")
    if name == "local":
        return ProcessExecutor(max_workers or max(1, os.cpu_count() or 1))
    if name == "ray":
        from keel.pipelines.ray_executor import RayExecutor

        return RayExecutor(address=address, max_workers=max_workers)
    if name == "inline":
        return InlineExecutor()
    raise InvalidInput(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")
