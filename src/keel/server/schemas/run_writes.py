"""Request body of POST /api/v1/runs/write: complete or partial runs for ``write_runs``.

Each run is checked as the one-run endpoints check theirs (ids, names, param and tag keys
and values, dataset inputs, artifact entries), then as every backend checks a batch
(``keel.tracking.run_writes.check_run_writes``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from keel.server.schemas.tracking import (
    ArtifactEntryBody,
    DatasetInputBody,
    Int64,
    clean_params,
    clean_tags,
)
from keel.tracking.entities import RunStatus
from keel.tracking.run_writes import MAX_RUN_WRITES, RunWrite, check_run_writes
from keel.tracking.validation import check_id, check_name

__all__ = ["RunWriteBody", "RunWritesBody"]


class RunWriteBody(BaseModel):
    """One run's write: its creation (with ``experiment_id``), values and end."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    experiment_id: str | None = None
    name: str | None = None
    user: str | None = Field(default=None, max_length=1024)
    start_time: Int64 | None = None
    source: str | None = Field(default=None, max_length=4096)
    git_commit: str | None = Field(default=None, max_length=256)
    git_dirty: bool | None = None
    parent_run_id: str | None = None
    writer: str | None = Field(default=None, max_length=1024)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    inputs: list[DatasetInputBody] = Field(default_factory=list, max_length=10_000)
    artifacts: list[ArtifactEntryBody] = Field(default_factory=list, max_length=100_000)
    status: str | None = None
    end_time: Int64 | None = None

    def to_write(self, user: str | None) -> RunWrite:
        """Return the checked ``RunWrite``; a created run's user is ``user`` when given
        (the authenticated caller), else the body's."""
        creates = self.experiment_id is not None
        return RunWrite(
            run_id=check_id("run", self.run_id),
            experiment_id=None if not creates else check_id("experiment", self.experiment_id),
            name=None if self.name is None else check_name("run", self.name),
            user=user if creates and user is not None else self.user,
            start_time=self.start_time,
            source=self.source,
            git_commit=self.git_commit,
            git_dirty=self.git_dirty,
            parent_run_id=None
            if self.parent_run_id is None
            else check_id("run", self.parent_run_id),
            writer=self.writer,
            params=clean_params(self.params),
            tags=clean_tags(self.tags),
            inputs=tuple(i.to_entity() for i in self.inputs),
            artifacts=tuple(a.to_entity() for a in self.artifacts),
            status=None if self.status is None else RunStatus.parse(self.status),
            end_time=self.end_time,
        )


class RunWritesBody(BaseModel):
    """POST /runs/write."""

    model_config = ConfigDict(extra="forbid")

    runs: list[RunWriteBody] = Field(max_length=MAX_RUN_WRITES)

    def to_writes(self, user: str | None) -> list[RunWrite]:
        """Return the checked writes (``InvalidInput`` naming the first bad one)."""
        return check_run_writes([r.to_write(user) for r in self.runs])
