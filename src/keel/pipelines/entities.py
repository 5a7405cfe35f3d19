"""What the pipelines SDK returns: a pipeline run with its step runs, as plain dataclasses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.pipelines.materialize import OutputRef

__all__ = ["STEP_STATUSES", "PipelineRunInfo", "PipelineSummary", "StepRunInfo", "step_depths"]

# finished: ran and succeeded; cached: skipped, an earlier output reused; failed: raised,
# timed out or returned what cannot be stored (after its retries); skipped: not run because
# a step it depends on failed; running: still going (or its writer died).
STEP_STATUSES = ("running", "finished", "cached", "failed", "skipped")


@dataclass(frozen=True)
class StepRunInfo:
    """One node of a pipeline run: how it ended, its cache key, output and upstream nodes."""

    node: str
    step: str
    run_id: str
    status: str
    start_time: int
    end_time: int | None
    cache_key: str | None
    upstream: tuple[str, ...]
    params: dict[str, str]
    output: OutputRef | None = None
    attempts: int = 0
    error: str | None = None
    cached_from: str | None = None

    @property
    def duration_ms(self) -> int | None:
        """Milliseconds from start to end, or None while running."""
        return None if self.end_time is None else self.end_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this step run."""
        return {
            "node": self.node,
            "step": self.step,
            "run_id": self.run_id,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration_ms": self.duration_ms,
            "cache_key": self.cache_key,
            "upstream": list(self.upstream),
            "params": dict(self.params),
            "output": None if self.output is None else self.output.to_dict(),
            "attempts": self.attempts,
            "error": self.error,
            "cached_from": self.cached_from,
        }


@dataclass(frozen=True)
class PipelineRunInfo:
    """A pipeline run (a Keel run in the pipeline's experiment) and its step runs."""

    run_id: str
    pipeline: str
    experiment_id: str
    status: str
    start_time: int
    end_time: int | None
    params: dict[str, str]
    ref: str | None
    resume_of: str | None = None
    steps: list[StepRunInfo] = field(default_factory=list)

    @property
    def duration_ms(self) -> int | None:
        """Milliseconds from start to end, or None while running."""
        return None if self.end_time is None else self.end_time - self.start_time

    def step(self, node: str) -> StepRunInfo:
        """Return the step run of node ``node``; ``NotFound`` if the run has none."""
        for item in self.steps:
            if item.node == node:
                return item
        from keel.errors import NotFound

        raise NotFound(f"pipeline run {self.run_id} has no step {node!r}")

    def counts(self) -> dict[str, int]:
        """Return how many steps ended in each status (statuses with none left out)."""
        out: dict[str, int] = {}
        for item in self.steps:
            out[item.status] = out.get(item.status, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this run and its steps."""
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "experiment_id": self.experiment_id,
            "status": self.status,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "duration_ms": self.duration_ms,
            "params": dict(self.params),
            "ref": self.ref,
            "resume_of": self.resume_of,
            "counts": self.counts(),
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class PipelineSummary:
    """A pipeline that has runs: its name, run count and its latest run."""

    name: str
    experiment_id: str
    runs: int
    last_run_id: str | None
    last_status: str | None
    last_start_time: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this summary."""
        return {
            "name": self.name,
            "experiment_id": self.experiment_id,
            "runs": self.runs,
            "last_run_id": self.last_run_id,
            "last_status": self.last_status,
            "last_start_time": self.last_start_time,
        }


def step_depths(steps: Sequence[StepRunInfo]) -> dict[str, int]:
    """Return each step's depth in its run's DAG: 0 for a step with no upstream step among
    ``steps``, else one more than its deepest upstream step."""
    # Kahn's order, iteratively: a chain of thousands of steps must not hit the recursion
    # limit. A node left over (only a corrupted record could make a cycle) goes in layer 0.
    known = {s.node for s in steps}
    upstream = {s.node: [u for u in dict.fromkeys(s.upstream) if u in known] for s in steps}
    downstream: dict[str, list[str]] = {node: [] for node in upstream}
    for node, ups in upstream.items():
        for up in ups:
            downstream[up].append(node)
    waiting = {node: len(ups) for node, ups in upstream.items()}
    layer = {node: 0 for node, count in waiting.items() if count == 0}
    ready = list(layer)
    while ready:
        node = ready.pop()
        for down in downstream[node]:
            layer[down] = max(layer.get(down, 0), layer[node] + 1)
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    for node in upstream:
        layer.setdefault(node, 0)
    return layer
