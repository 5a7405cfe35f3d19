"""The ``ray`` executor: each step attempt is a Ray task with the step's resources.

``executor="ray"`` connects to the cluster at ``address`` (``ray://…`` or ``auto``), or
starts a local Ray instance when there is none. A task asks Ray for the step's ``cpus``
(default 1), ``gpus`` and ``memory``; Ray's own task retries are off (``max_retries=0``)
because Keel's retries, with their backoff and records, are the ones that count. A step
past its timeout is cancelled with ``force=True`` (its worker process is killed).

Workers read and write outputs in the artifact store by URL, so on a real cluster that URL
must be reachable from every node (``s3://…``); a local folder works on one machine.
"""

from __future__ import annotations

import os
import pickle
import sys
import time
from typing import Any

import cloudpickle

from keel.errors import require
from keel.pipelines.pool import Executor
from keel.pipelines.worker import StepResult, StepTask, execute

__all__ = ["RayExecutor"]

_UNBOUNDED = 10_000  # Ray queues tasks itself: the engine may submit all that are ready


def _run(payload: bytes) -> bytes:
    """Run one pickled StepTask inside a Ray worker; return its pickled StepResult."""
    return pickle.dumps(execute(cloudpickle.loads(payload)), protocol=5)


class RayExecutor(Executor):
    """Submits step attempts as Ray tasks and collects them as they finish."""

    def __init__(self, *, address: str | None = None, max_workers: int | None = None) -> None:
        self._ray: Any = require("ray", "ray")
        ray = self._ray
        if not ray.is_initialized():
            if address is None:
                # A local instance: its workers must import what this process can.
                env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
                ray.init(
                    include_dashboard=False,
                    log_to_driver=False,
                    configure_logging=False,
                    runtime_env={"env_vars": env},
                )
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        self._remote = ray.remote(max_retries=0)(_run)
        self._limit = max_workers or _UNBOUNDED
        self._refs: dict[Any, tuple[StepTask, float | None]] = {}
        self._refused: list[StepResult] = []
        # A local instance never grows: a step asking for more than it has would wait
        # forever, so it fails at once instead. A cluster may autoscale: Ray decides there.
        self._capacity = dict(ray.cluster_resources()) if address is None else None

    @property
    def free_slots(self) -> int:
        return self._limit - len(self._refs)

    def submit(self, task: StepTask, timeout: float | None) -> None:
        options = task.step.options
        resources: dict[str, Any] = {"num_cpus": 1 if options.cpus is None else options.cpus}
        if options.gpus is not None:
            resources["num_gpus"] = options.gpus
        if options.memory is not None:
            resources["memory"] = options.memory
        if self._capacity is not None:
            for key, label in (("num_cpus", "CPU"), ("num_gpus", "GPU"), ("memory", "memory")):
                have = self._capacity.get(label, 0)
                if resources.get(key, 0) > have:
                    why = (
                        f"it asks for {key.removeprefix('num_')}={resources[key]:g} but the local "
                        f"Ray instance has {have:g}; lower it or pass a cluster address"
                    )
                    self._refused.append(_failure(task, why))
                    return
        payload = cloudpickle.dumps(task, protocol=5)
        ref = self._remote.options(**resources).remote(payload)
        deadline = None if timeout is None else time.monotonic() + timeout
        self._refs[ref] = (task, deadline)

    def collect(self, wait_at_most: float) -> list[StepResult]:
        if self._refused:
            refused, self._refused = self._refused, []
            return refused
        if not self._refs:
            return []
        ray = self._ray
        now = time.monotonic()
        deadlines = [d - now for _, d in self._refs.values() if d is not None]
        limit = max(0.0, min([wait_at_most, *deadlines]))
        ready, _ = ray.wait(list(self._refs), num_returns=1, timeout=limit)
        if ready:
            ready, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        results = []
        for ref in ready:
            task, _ = self._refs.pop(ref)
            try:
                results.append(pickle.loads(ray.get(ref)))
            except Exception as exc:  # noqa: BLE001 - a crashed worker, a lost node…
                results.append(_failure(task, f"its Ray task failed: {type(exc).__name__}: {exc}"))
        now = time.monotonic()
        for ref, (task, deadline) in list(self._refs.items()):
            if deadline is not None and now >= deadline:
                del self._refs[ref]
                ray.cancel(ref, force=True)
                limit_s = task.step.options.timeout or 0
                why = f"it ran longer than its timeout of {limit_s:g} s and was stopped"
                results.append(_failure(task, why))
        return results

    def close(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()


def _failure(task: StepTask, why: str) -> StepResult:
    now = time.time_ns() // 1_000_000
    return StepResult(task.node_id, None, why[:4000], None, "", now, now)
