"""What tracking returns: experiments, runs and their parts, as plain dataclasses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

__all__ = [
    "ArtifactEntry",
    "DatasetInput",
    "Experiment",
    "ExperimentKeys",
    "Metric",
    "PagedList",
    "Run",
    "RunSnapshot",
    "RunStatus",
]

T = TypeVar("T")


class RunStatus(StrEnum):
    """Where a run is in its life; finished, failed and killed are final."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"

    @classmethod
    def parse(cls, value: str | RunStatus) -> RunStatus:
        from keel.errors import InvalidInput

        try:
            return cls(str(value).lower())
        except ValueError:
            raise InvalidInput(
                f"unknown run status {value!r}; use one of {', '.join(s.value for s in cls)}"
            ) from None


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: str
    name: str
    artifact_location: str | None
    lifecycle_stage: str
    created_at: int
    updated_at: int
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this experiment."""
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "description": self.description,
            "artifact_location": self.artifact_location,
            "lifecycle_stage": self.lifecycle_stage,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class ExperimentKeys:
    """The distinct metric, param and tag keys of an experiment's active runs, sorted."""

    metrics: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of the three key lists."""
        return {"metrics": list(self.metrics), "params": list(self.params), "tags": list(self.tags)}


@dataclass(frozen=True)
class Metric:
    """One logged metric point."""

    key: str
    value: float
    step: int
    timestamp: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict; NaN and ±inf become the strings "NaN", "Infinity"."""
        return {
            "key": self.key,
            "value": float_to_json(self.value),
            "step": self.step,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run consumed, and in what role (training, validation, …)."""

    name: str
    digest: str
    source: str | None
    context: str
    schema: dict[str, Any] | None = None
    profile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this input."""
        return {
            "name": self.name,
            "digest": self.digest,
            "source": self.source,
            "context": self.context,
            "schema": self.schema,
            "profile": self.profile,
        }


@dataclass(frozen=True)
class ArtifactEntry:
    """A file a run logged: its logical path and content digest."""

    path: str
    digest: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this entry."""
        return {"path": self.path, "digest": self.digest, "size": self.size}


@dataclass(slots=True)
class Run:
    """A run with its params, tags and latest metric values (a snapshot: edits stay local)."""

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    user: str
    source: str | None
    git_commit: str | None
    git_dirty: bool | None
    parent_run_id: str | None
    lifecycle_stage: str
    heartbeat_at: int | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def duration_ms(self) -> int | None:
        """Milliseconds from start to end, or None while running."""
        return None if self.end_time is None else self.end_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this run (non-finite metrics as strings)."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "status": self.status.value,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "user": self.user,
            "source": self.source,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "parent_run_id": self.parent_run_id,
            "lifecycle_stage": self.lifecycle_stage,
            "heartbeat_at": self.heartbeat_at,
            "params": dict(self.params),
            "metrics": {k: float_to_json(v) for k, v in self.metrics.items()},
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class RunSnapshot:
    """A run with its dataset inputs and artifact files (under a prefix), read at once."""

    run: Run
    inputs: list[DatasetInput]
    artifacts: list[ArtifactEntry]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this snapshot."""
        return {
            "run": self.run.to_dict(),
            "inputs": [i.to_dict() for i in self.inputs],
            "artifacts": [a.to_dict() for a in self.artifacts],
        }


class PagedList(list[T], Generic[T]):
    """A page of results; ``next_page_token`` fetches the next page (None at the end)."""

    def __init__(self, items: list[T], next_page_token: str | None) -> None:
        super().__init__(items)
        self.next_page_token = next_page_token


def float_to_json(value: float) -> float | str:
    """Return ``value``, or "NaN" / "Infinity" / "-Infinity" where JSON has no number."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"
