"""``RunWrite``: a complete or partial run, for ``TrackingStore.write_runs``.

A writer with many small runs (a pipeline's step runs) sends them in one call, so the
whole batch is one transaction (one request through a server) instead of a create, a
batch and an end per run. A write names its run by an id the writer chose
(``new_run_id``), which makes it idempotent: sent twice, the run is created once.

One write can carry, for one run:

- its creation (``experiment_id`` set, with ``name``, ``user`` and ``start_time``): the
  run is created if no run has this id; if one does (it must be in the same experiment,
  under the same parent), the creation is skipped and the rest applies to it;
- ``params`` (a param already logged with another value is a ``Conflict``), ``tags``
  (set or overwritten), dataset ``inputs`` and ``artifacts`` (index entries);
- its end: a final ``status`` with its ``end_time``.

A write without a creation needs the run to exist (``NotFound`` otherwise). Any error
leaves nothing of the batch written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.errors import InvalidInput
from keel.tracking.entities import ArtifactEntry, DatasetInput, RunStatus

__all__ = ["MAX_RUN_WRITES", "RunWrite", "check_run_writes", "new_run_id"]

MAX_RUN_WRITES = 1000  # runs per write_runs call, on every backend (a request stays < 32 MB)
_FINAL = (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)
_CREATION = ("name", "user", "start_time", "source", "git_commit", "git_dirty", "parent_run_id")


def new_run_id() -> str:
    """Return a fresh run id (32 hex characters, as the stores make them)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RunWrite:
    """What to write to one run: its creation, params, tags, inputs, artifacts and end."""

    run_id: str
    experiment_id: str | None = None  # set: create the run unless it exists
    name: str | None = None
    user: str | None = None
    start_time: int | None = None
    source: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    parent_run_id: str | None = None
    writer: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[DatasetInput, ...] = ()
    artifacts: tuple[ArtifactEntry, ...] = ()
    status: RunStatus | None = None  # set (a final status): end the run at end_time
    end_time: int | None = None

    @property
    def creates(self) -> bool:
        """Whether this write creates its run (when no run has its id yet)."""
        return self.experiment_id is not None

    def then(self, later: RunWrite) -> RunWrite:
        """Return this write followed by ``later`` (of the same run) as one write.

        The creation is this one's; later params and tags win, inputs and artifacts add
        up (a path logged again points at the later entry), and the later end wins.
        """
        if later.run_id != self.run_id:
            raise InvalidInput(f"cannot merge a write of run {later.run_id} into {self.run_id}")
        base = self if self.creates or not later.creates else later
        paths = {a.path for a in later.artifacts}
        return RunWrite(
            **{name: getattr(base, name) for name in ("run_id", "experiment_id", *_CREATION)},
            writer=base.writer,
            params={**self.params, **later.params},
            tags={**self.tags, **later.tags},
            inputs=self.inputs + tuple(i for i in later.inputs if i not in self.inputs),
            artifacts=tuple(a for a in self.artifacts if a.path not in paths) + later.artifacts,
            status=later.status if later.status is not None else self.status,
            end_time=later.end_time if later.status is not None else self.end_time,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this write (the REST API's form)."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "user": self.user,
            "start_time": self.start_time,
            "source": self.source,
            "git_commit": self.git_commit,
            "git_dirty": self.git_dirty,
            "parent_run_id": self.parent_run_id,
            "writer": self.writer,
            "params": dict(self.params),
            "tags": dict(self.tags),
            "inputs": [i.to_dict() for i in self.inputs],
            "artifacts": [a.to_dict() for a in self.artifacts],
            "status": None if self.status is None else self.status.value,
            "end_time": self.end_time,
        }


def _check_one(write: Any, index: int) -> RunWrite:
    if not isinstance(write, RunWrite):
        raise InvalidInput(f"writes[{index}] is a {type(write).__name__}, not a RunWrite")
    where = f"writes[{index}] (run {write.run_id})"
    if write.creates:
        if write.name is None or write.user is None or write.start_time is None:
            raise InvalidInput(f"{where} creates a run: it needs a name, a user and a start_time")
    else:
        given = [name for name in _CREATION if getattr(write, name) is not None]
        if given:
            raise InvalidInput(
                f"{where} sets {', '.join(given)} but no experiment_id: only a write that "
                "creates its run (with an experiment_id) may set them"
            )
    if (write.status is None) != (write.end_time is None):
        raise InvalidInput(f"{where}: a status and an end_time end a run together, or neither")
    if write.status is not None and RunStatus.parse(write.status) not in _FINAL:
        raise InvalidInput(
            f"{where}: a write ends a run with a final status "
            f"({', '.join(s.value for s in _FINAL)}), not {write.status!r}"
        )
    return write


def check_run_writes(writes: Sequence[RunWrite]) -> list[RunWrite]:
    """Return ``writes`` as a list, or raise ``InvalidInput`` naming the first bad one.

    At most ``MAX_RUN_WRITES``, each run once (merge a run's writes with ``then``), and
    each write complete (see the module docstring).
    """
    writes = list(writes)
    if len(writes) > MAX_RUN_WRITES:
        raise InvalidInput(
            f"{len(writes)} run writes in one call; the limit is {MAX_RUN_WRITES} (send "
            "several batches)"
        )
    seen: set[str] = set()
    for index, write in enumerate(writes):
        _check_one(write, index)
        if write.run_id in seen:
            raise InvalidInput(
                f"run {write.run_id} is written twice in one batch; merge its writes first "
                "(RunWrite.then)"
            )
        seen.add(write.run_id)
    return writes
