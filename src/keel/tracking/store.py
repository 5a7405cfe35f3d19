"""The tracking store interface: every backend (SQL, REST) implements exactly this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence

from keel.tracking.entities import (
    ArtifactEntry,
    DatasetInput,
    Experiment,
    ExperimentKeys,
    Metric,
    PagedList,
    Run,
    RunSnapshot,
    RunStatus,
)
from keel.tracking.run_writes import RunWrite

__all__ = ["MetricRow", "TrackingStore"]

# (key, value, timestamp_ms, step): how buffered metrics travel to a store.
MetricRow = tuple[str, float, int, int]


class TrackingStore(ABC):
    """Experiments, runs, params, metrics, tags, dataset inputs and artifact indexes."""

    @abstractmethod
    def ping(self) -> None:
        """Return once the store answers (one round trip, nothing read);
        ``StoreUnavailable`` if it cannot be reached."""

    # -- experiments ---------------------------------------------------------------------
    @abstractmethod
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """Return a new experiment; ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id; ``NotFound`` otherwise."""

    @abstractmethod
    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""

    @abstractmethod
    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        """Return every experiment, oldest first."""

    @abstractmethod
    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment and its runs deleted (they stay in the database)."""

    @abstractmethod
    def get_experiment_keys(self, experiment_id: str) -> ExperimentKeys:
        """Return the distinct metric, param and tag keys of the experiment's active runs.

        Reads only the key columns (no values, no runs), so it stays cheap on experiments
        with many runs and thousands of keys; ``NotFound`` if the experiment does not exist.
        """

    # -- runs ----------------------------------------------------------------------------
    @abstractmethod
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        user: str,
        start_time: int,
        source: str | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        writer: str | None = None,
    ) -> Run:
        """Return a new running run in ``experiment_id``."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """Return the run with its params, tags and latest metrics; ``NotFound`` otherwise."""

    @abstractmethod
    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        """Set a final status and end time; return the updated run."""

    @abstractmethod
    def claim_run(self, run_id: str, writer: str, now: int, timeout_ms: int) -> Run:
        """Make ``writer`` the run's live writer; ``Conflict`` if another holds it."""

    @abstractmethod
    def heartbeat(self, run_id: str, writer: str, now: int) -> None:
        """Record that ``writer`` is still alive and writing ``run_id``."""

    @abstractmethod
    def fail_stale_runs(self, now: int, timeout_ms: int) -> list[str]:
        """Mark running runs with no heartbeat for ``timeout_ms`` failed; return their ids."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted (it stays in the database)."""

    @abstractmethod
    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricRow] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write metrics, params and tags in one transaction.

        A param already logged with a different value is a ``Conflict`` and nothing of
        the batch is written.
        """

    @abstractmethod
    def write_runs(self, writes: Sequence[RunWrite]) -> None:
        """Write complete or partial runs — creations, params, tags, inputs, artifacts, ends
        — in one transaction (one request through a server); see ``keel.tracking.run_writes``.

        At most ``MAX_RUN_WRITES`` runs, each once. A run is created only if no run has its
        id, so a write sent twice creates it once. ``NotFound`` for a run that neither exists
        nor is created here (or a missing experiment or parent), ``Conflict`` for a param
        that would change or a deleted experiment: then nothing of the batch is written.
        """

    @abstractmethod
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of one metric, by step then timestamp."""

    @abstractmethod
    def log_inputs(self, run_id: str, inputs: Iterable[DatasetInput]) -> None:
        """Record datasets the run consumed."""

    @abstractmethod
    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        """Return the datasets the run consumed."""

    @abstractmethod
    def add_artifacts(self, run_id: str, entries: Iterable[ArtifactEntry]) -> None:
        """Index artifact files of a run (a path logged again points at the new digest)."""

    @abstractmethod
    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
        """Return the run's artifact files under ``prefix`` (all when None), by path."""

    @abstractmethod
    def get_run_snapshot(self, run_id: str, prefix: str | None = None) -> RunSnapshot:
        """Return the run, its dataset inputs and its artifact files under ``prefix``.

        The same as ``get_run``, ``get_inputs`` and ``list_artifacts`` together, read in one
        transaction (one request through a server); ``NotFound`` if there is no such run.
        """

    @abstractmethod
    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Return one page of runs matching ``filter`` in the given experiments."""
