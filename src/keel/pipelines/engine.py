"""The engine: runs a traced DAG on an executor, with caching, retries and records.

Nodes become ready when every node they read from has an output. A ready node's cache key
is computed from its code, parameters, upstream output digests and declared inputs; all
ready nodes are looked up in one batched search, and a hit is recorded as ``cached`` with
the earlier output reused. Misses start on the executor as slots free up. A failed attempt
is retried after ``retry_delay * backoff ** (attempt - 1)`` seconds, without blocking other
steps; a step that fails for good marks only the nodes that depend on it ``skipped`` —
independent branches run to the end. Where workers write this machine's files, a finished
step's output is written without fsync and its dependents start at once; its record waits
until its group of outputs is durable (:mod:`keel.pipelines.durable`).
"""

from __future__ import annotations

import contextlib
import heapq
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from keel.errors import KeelError
from keel.pipelines import records as R
from keel.pipelines.cache import cache_key, code_digest, dataset_digest
from keel.pipelines.durable import OutputFlusher
from keel.pipelines.materialize import OutputRef

if TYPE_CHECKING:
    from keel.pipelines.entities import StepRunInfo
    from keel.pipelines.graph import Dag, Node
    from keel.pipelines.pool import Executor
    from keel.pipelines.worker import StepResult, StoreSpec

__all__ = ["NodeState", "run_dag"]

_POLL = 0.5  # the longest the loop sleeps: heartbeats and retries need it awake
_FLUSH_POLL = 0.005  # ... and while outputs are being flushed: their records wait for it


@dataclass
class NodeState:
    """Where one node of a running DAG is."""

    node: Node
    status: str = "pending"  # pending, queued, waiting, running, + the final STEP_STATUSES
    attempts: int = 0
    run_id: str | None = None
    key: str | None = None
    output: OutputRef | None = None
    error: str | None = None
    datasets: dict[str, str] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)


class _Run:
    def __init__(
        self,
        dag: Dag,
        recorder: R.Recorder,
        parent: str,
        executor: Executor,
        spec: StoreSpec,
        no_cache: bool,
        prior: Mapping[str, StepRunInfo],
    ) -> None:
        self.dag, self.recorder, self.parent = dag, recorder, parent
        self.executor, self.spec, self.no_cache, self.prior = executor, spec, no_cache, prior
        self.states = {i: NodeState(n) for i, n in dag.nodes.items()}
        self.children = dag.downstream()
        self.blocked = {i: len(n.upstream) for i, n in dag.nodes.items()}
        self.ready: deque[str] = deque(i for i, c in self.blocked.items() if c == 0)
        self.queued: deque[str] = deque()
        self.waiting: list[tuple[float, str]] = []
        self.running: set[str] = set()
        self.flusher = _flusher(executor, spec)
        self.unrecorded: set[str] = set()  # finished, waiting for their outputs' flush

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> dict[str, NodeState]:
        from keel.config import get_settings

        beat_every = get_settings().heartbeat_interval
        next_beat = time.monotonic() + beat_every
        while True:
            self._record_flushed()
            if self.ready:
                self._look_up_ready()
            now = time.monotonic()
            while self.waiting and self.waiting[0][0] <= now:
                self.queued.appendleft(heapq.heappop(self.waiting)[1])
            while self.queued and self.executor.free_slots > 0:
                self._start(self.queued.popleft())
            if not (self.running or self.queued or self.waiting or self.ready):
                if self.unrecorded:
                    self._record_flushed(block=True)
                return self.states
            wait = _POLL if not self.waiting else max(0.0, min(_POLL, self.waiting[0][0] - now))
            if self.unrecorded:
                wait = min(wait, _FLUSH_POLL)
            for result in self.executor.collect(wait if self.running else 0.0):
                self._finish(result)
            if not self.running and self.waiting and not self.ready and not self.queued:
                time.sleep(max(0.0, min(_POLL, self.waiting[0][0] - time.monotonic())))
            if time.monotonic() >= next_beat:
                alive = [  # waiting for a retry or a flush is alive too: no heartbeat GC
                    st.run_id
                    for node_id, st in self.states.items()
                    if st.run_id is not None
                    and (st.status in ("running", "waiting") or node_id in self.unrecorded)
                ]
                self.recorder.heartbeat([self.parent, *alive])
                next_beat = time.monotonic() + beat_every

    def abandon(self) -> None:
        """Record every unfinished node as failed (the run was interrupted)."""
        if self.unrecorded:  # they did finish: recorded so, if their outputs can be flushed
            with contextlib.suppress(Exception):
                self._record_flushed(block=True)
        for node_id in list(self.unrecorded):
            state = self.states[node_id]
            self.recorder.end_step(
                state.run_id,  # type: ignore[arg-type]
                "failed",
                attempts=state.attempts,
                error="the pipeline run stopped before this step's output was flushed to disk",
                logs="".join(state.logs) or None,
            )
            state.status = "failed"
        self.unrecorded.clear()
        for state in self.states.values():
            if state.status in ("running", "waiting") and state.run_id is not None:
                self.recorder.end_step(
                    state.run_id,
                    "failed",
                    attempts=state.attempts,
                    error="the pipeline run was interrupted",
                )
                state.status = "failed"

    # -- ready nodes: keys and cache -----------------------------------------------------
    def _look_up_ready(self) -> None:
        batch = list(self.ready)
        self.ready.clear()
        keyed: dict[str, tuple[str, dict[str, str]]] = {}
        for node_id in batch:
            state = self.states[node_id]
            try:
                datasets = {p: dataset_digest(p) for p in state.node.step.options.inputs}
            except KeelError as exc:
                self._fail_for_good(state, f"{exc.message}", datasets={})
                continue
            inputs = {arg: self._digest(src) for arg, src in state.node.inputs.items()}
            state.key = cache_key(
                code_digest(state.node.step.fn), state.node.params, inputs, datasets
            )
            keyed[node_id] = (state.key, datasets)
        lookup = [
            key
            for node_id, (key, _) in keyed.items()
            if not (self.no_cache or self.states[node_id].node.step.options.no_cache)
        ]
        hits = self.recorder.find_cached(lookup) if lookup else {}
        for node_id, (key, datasets) in keyed.items():
            state = self.states[node_id]
            hit = hits.get(key) if key in lookup else None
            prior = self.prior.get(node_id)
            if (
                prior is not None
                and prior.status in ("finished", "cached")
                and prior.cache_key == key
                and prior.output is not None
                and self.recorder.stores.artifacts.exists(prior.output.digest)
            ):
                hit = R.CachedOutput(prior.cached_from or prior.run_id, prior.output)
            state.datasets = datasets
            if hit is not None:
                state.run_id = self._record_start(state, datasets, "cached")
                self.recorder.end_step(
                    state.run_id, "cached", output=hit.output, cached_from=hit.run_id
                )
                self._succeeded(state, hit.output, "cached")
            else:
                state.status = "queued"
                self.queued.append(node_id)

    def _digest(self, source: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if isinstance(source, str):
            return self.states[source].output.digest  # type: ignore[union-attr]
        return tuple(self.states[s].output.digest for s in source)  # type: ignore[union-attr]

    def _record_start(self, state: NodeState, datasets: dict[str, str], status: str) -> str:
        node = state.node
        tags = {R.UPSTREAM: orjson.dumps(list(node.upstream)).decode()}
        if state.key is not None:
            tags[R.KEY] = state.key
            tags[R.CODE] = code_digest(node.step.fn)
        if node.inputs:
            inputs = (
                {a: self._digest(s) for a, s in node.inputs.items()} if status != "skipped" else {}
            )
            if inputs:
                tags[R.INPUTS] = orjson.dumps(inputs).decode()
        return self.recorder.start_step(
            self.parent,
            node.id,
            node.step.name,
            status="running" if status == "queued" else status,
            tags=tags,
            params=node.params,
            datasets=datasets,
        )

    # -- running -------------------------------------------------------------------------
    def _start(self, node_id: str) -> None:
        from keel.pipelines.worker import StepTask

        state = self.states[node_id]
        if state.run_id is None:  # recorded when it starts, so its timings are its own
            state.run_id = self._record_start(state, state.datasets, "queued")
        state.attempts += 1
        state.status = "running"
        inputs = {
            arg: self.states[src].output
            if isinstance(src, str)
            else tuple(self.states[s].output for s in src)
            for arg, src in state.node.inputs.items()
        }
        task = StepTask(
            node_id,
            state.node.step,
            dict(state.node.params),
            inputs,
            self.spec,  # type: ignore[arg-type]
            state.attempts,
            state.run_id,
            self.recorder.pending_start(state.run_id),  # type: ignore[arg-type]
            defer_sync=self.flusher is not None,
        )
        self.running.add(node_id)
        self.executor.submit(task, state.node.step.options.timeout)

    def _finish(self, result: StepResult) -> None:
        state = self.states.get(result.node_id)
        if state is None or state.status != "running":
            return
        self.running.discard(result.node_id)
        header = f"--- attempt {state.attempts} ---\n" if state.attempts > 1 or result.error else ""
        text = header + result.logs
        if result.error is not None:
            text += f"\nattempt {state.attempts} failed: {result.error}\n"
            if result.traceback:
                text += result.traceback
        state.logs.append(text)
        if result.error is None and result.output is not None:
            state.output = result.output
            if result.unsynced and self.flusher is not None:
                self.unrecorded.add(state.node.id)
                self.flusher.add(state, result.unsynced)
            else:
                self._record_finished(state)
            self._succeeded(state, result.output, "finished")
            return
        options = state.node.step.options
        if state.attempts <= options.retries:
            state.status = "waiting"
            state.error = result.error
            heapq.heappush(
                self.waiting, (time.monotonic() + options.retry_wait(state.attempts), state.node.id)
            )
            return
        self._fail_for_good(state, result.error or "it failed", datasets=None)

    def _record_finished(self, state: NodeState) -> None:
        self.recorder.end_step(
            state.run_id,  # type: ignore[arg-type]
            "finished",
            output=state.output,
            attempts=state.attempts,
            logs="".join(state.logs),
        )

    def _record_flushed(self, *, block: bool = False) -> None:
        if self.flusher is None or not self.unrecorded:
            return
        for state in self.flusher.released(block=block):
            self.unrecorded.discard(state.node.id)
            self._record_finished(state)

    def _succeeded(self, state: NodeState, output: OutputRef, status: str) -> None:
        state.output, state.status = output, status
        for child in self.children[state.node.id]:
            self.blocked[child] -= 1
            if self.blocked[child] == 0 and self.states[child].status == "pending":
                self.ready.append(child)

    def _fail_for_good(self, state: NodeState, error: str, datasets: dict[str, str] | None) -> None:
        if state.run_id is None:
            state.run_id = self._record_start(state, datasets or {}, "queued")
        state.status, state.error = "failed", error
        self.recorder.end_step(
            state.run_id,
            "failed",
            attempts=state.attempts,
            error=error,
            logs="".join(state.logs) or None,
        )
        for node_id in sorted(self.dag.descendants(state.node.id), key=list(self.dag.nodes).index):
            child = self.states[node_id]
            if child.status != "pending":
                continue
            child.status = "skipped"
            child.error = f"not run: step {state.node.id!r} it depends on failed"
            child.run_id = self._record_start(child, {}, "skipped")
            self.recorder.end_step(child.run_id, "skipped", error=child.error)


def run_dag(
    dag: Dag,
    *,
    recorder: R.Recorder,
    parent_run_id: str,
    executor: Executor,
    spec: StoreSpec,
    no_cache: bool,
    prior: Mapping[str, StepRunInfo] | None = None,
) -> dict[str, NodeState]:
    """Run every node of ``dag``; return each node's final state (records written)."""
    run = _Run(dag, recorder, parent_run_id, executor, spec, no_cache, prior or {})
    try:
        return run.run()
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be what failed: keep that error
            run.abandon()
        raise
    finally:
        if run.flusher is not None:
            run.flusher.close()


def _flusher(executor: Executor, spec: StoreSpec) -> OutputFlusher[NodeState] | None:
    """Return what flushes outputs workers wrote unsynced; None where they cannot."""
    if not executor.shares_files or spec.tracking_uri.startswith(("http://", "https://")):
        return None  # a server's store (its own writes are durable) or another machine's
    from keel.store.artifacts import ArtifactStore, open_artifact_store

    blobs = open_artifact_store(spec.artifact_uri)  # the store the workers open
    return OutputFlusher(blobs) if isinstance(blobs, ArtifactStore) else None
