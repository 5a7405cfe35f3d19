"""``Recorder``: writes one pipeline run's records — the run itself and its step runs.

The pipeline run is written at once (``start_pipeline``: one transaction, before any
step). Step starts and ends go through a ``RecordBuffer``: merged per run and written in
batches (a trivial step that starts and ends between two flushes costs a share of one
transaction), so a step run may reach the store up to ``record_buffer.FLUSH_DELAY``
after it started.
A step's code that asks for its active run before then creates the run itself from
``pending_start`` (the same write: creating a run is idempotent), so what it logs always
has its run. A process that dies loses at most its last unflushed records: a resumed run
then re-runs those steps, as it re-runs steps that failed.

The record shapes (see ``keel.pipelines.records``) are those ``read_run``, lineage and the
UI read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import AlreadyExists
from keel.pipelines import records as R
from keel.pipelines.materialize import OutputRef
from keel.pipelines.record_buffer import RecordBuffer
from keel.store.clock import now_ms
from keel.tracking.context import current_user, source_info, writer_id
from keel.tracking.entities import ArtifactEntry, DatasetInput, Run, RunStatus
from keel.tracking.run_writes import RunWrite, new_run_id

if TYPE_CHECKING:
    from keel.stores import Stores

__all__ = ["Recorder"]

_MAX_ERROR = 4000
_FINAL = {
    "finished": RunStatus.FINISHED,
    "cached": RunStatus.FINISHED,
    "failed": RunStatus.FAILED,
    "skipped": RunStatus.KILLED,
}


class Recorder:
    """Writes one pipeline's runs and step runs through the tracking store."""

    def __init__(self, stores: Stores, pipeline: str, *, flush_delay: float | None = None) -> None:
        self.stores = stores
        self.tracking = stores.tracking
        self.pipeline = pipeline
        self.experiment_id = self._experiment(pipeline)
        self.writer = writer_id()
        self.user = current_user()
        self._buffer = RecordBuffer(self.tracking, delay=flush_delay)
        self._starts: dict[str, RunWrite] = {}  # step runs started, not ended yet
        # Step runs of earlier pipeline runs that produced a cache hit: their siblings are
        # likely the next hits (a rerun hits step after step), so they are read at once.
        # This run's own successful steps join them as they end.
        self._known: dict[str, R.CachedOutput] = {}
        self._read_parents: set[str] = set()

    def _experiment(self, name: str) -> str:
        found = self.tracking.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            tags = {R.KIND: "pipeline"}
            return self.tracking.create_experiment(name, tags=tags).experiment_id
        except AlreadyExists:  # another process created it a moment ago
            again = self.tracking.get_experiment_by_name(name)
            if again is None:
                raise
            return again.experiment_id

    # -- pipeline runs -------------------------------------------------------------------
    def start_pipeline(
        self, ref: str | None, params: Mapping[str, Any], *, no_cache: bool, resume_of: str | None
    ) -> str:
        """Return the id of a new running pipeline run with its parameters recorded."""
        tags = {R.KIND: "pipeline", R.PIPELINE: self.pipeline, R.NO_CACHE: str(no_cache).lower()}
        if ref is not None:
            tags[R.REF] = ref
        if resume_of is not None:
            tags[R.RESUME_OF] = resume_of
        src = source_info()
        start = now_ms()
        run_id = new_run_id()
        self.tracking.write_runs(
            [
                RunWrite(
                    run_id,
                    self.experiment_id,
                    name=f"{self.pipeline}-{start}",
                    user=self.user,
                    start_time=start,
                    source=src.source,
                    git_commit=src.git_commit,
                    git_dirty=src.git_dirty,
                    writer=self.writer,
                    params={k: R.to_json(v) for k, v in params.items()},
                    tags=tags,
                )
            ]
        )
        return run_id

    def end_pipeline(self, run_id: str, status: RunStatus) -> None:
        """Record the pipeline run's final status, with every step record still buffered."""
        try:
            self._buffer.add(RunWrite(run_id, status=status, end_time=now_ms()))
        finally:
            self._buffer.close()

    # -- step runs -----------------------------------------------------------------------
    def start_step(
        self,
        parent: str,
        node: str,
        step: str,
        *,
        status: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        datasets: Mapping[str, str],
    ) -> str:
        """Return the id of a new step run under ``parent`` carrying ``tags`` and params."""
        run_id = new_run_id()
        write = RunWrite(
            run_id,
            self.experiment_id,
            name=node,
            user=self.user,
            start_time=now_ms(),
            parent_run_id=parent,
            writer=self.writer,
            params={k: R.to_json(v) for k, v in params.items()},
            tags={
                R.KIND: "step",
                R.PIPELINE: self.pipeline,
                R.NODE: node,
                R.STEP: step,
                R.STATUS: status,
                **tags,
            },
            inputs=tuple(
                DatasetInput(path, digest, path, "step-input") for path, digest in datasets.items()
            ),
        )
        self._starts[run_id] = write
        self._buffer.add(write)
        return run_id

    def pending_start(self, run_id: str) -> RunWrite | None:
        """Return the write that creates step run ``run_id`` (None once the step ended).

        A step's process that needs its run before the buffer is written (the step logs a
        metric) writes this itself; the buffer's write of the same run then finds it.
        """
        return self._starts.get(run_id)

    def end_step(
        self,
        run_id: str,
        status: str,
        *,
        output: OutputRef | None = None,
        attempts: int = 0,
        error: str | None = None,
        logs: str | None = None,
        cached_from: str | None = None,
    ) -> None:
        """Record how a step run ended: its status, output, attempts, error and logs."""
        tags = {R.STATUS: status}
        if output is not None:
            tags[R.OUTPUT] = output.to_json()
            tags[R.OUTPUT_DIGEST] = output.digest
        if attempts:
            tags[R.ATTEMPTS] = str(attempts)
        if error:
            tags[R.ERROR] = error if len(error) <= _MAX_ERROR else error[: _MAX_ERROR - 1] + "…"
        if cached_from:
            tags[R.CACHED_FROM] = cached_from
        artifacts: tuple[ArtifactEntry, ...] = ()
        if logs:
            blob = self.stores.artifacts.put_bytes(logs.encode("utf-8", "replace"))
            artifacts = (ArtifactEntry(R.LOG_FILE, blob.digest, blob.size),)
        start = self._starts.pop(run_id, None)
        key = None if start is None else start.tags.get(R.KEY)
        if key is not None and output is not None and status in ("finished", "cached"):
            # A later node of this run with the same key hits it before it is written.
            self._known.setdefault(key, R.CachedOutput(cached_from or run_id, output))
        self._buffer.add(
            RunWrite(
                run_id, tags=tags, artifacts=artifacts, status=_FINAL[status], end_time=now_ms()
            )
        )

    def flush(self) -> None:
        """Write every buffered step record now."""
        self._buffer.flush()

    def heartbeat(self, run_ids: Iterable[str]) -> None:
        """Tell the store these runs' writer (this process) is alive."""
        self._buffer.flush()  # every run named is then in the store
        now = now_ms()
        for run_id in run_ids:
            self.tracking.heartbeat(run_id, self.writer, now)

    # -- cache ---------------------------------------------------------------------------
    def find_cached(self, keys: Sequence[str]) -> dict[str, R.CachedOutput]:
        """Return, for each key an earlier finished step run has, that run and its output.

        A run whose output blob is no longer in the artifact store is not a hit.
        """
        found: dict[str, R.CachedOutput] = {}
        wanted = []
        exists = self.stores.artifacts.exists
        for key in sorted(set(keys)):
            known = self._known.get(key)
            if known is not None and exists(known.output.digest):
                found[key] = known
            else:
                wanted.append(key)
        parents: set[str] = set()
        for start in range(0, len(wanted), R.KEYS_PER_QUERY):
            chunk = wanted[start : start + R.KEYS_PER_QUERY]
            quoted = ", ".join(f"'{k}'" for k in chunk)  # keys are hex digests: no quoting
            text = f"tags.`{R.KEY}` in ({quoted}) and attributes.status = 'finished'"
            for run in self._search(text):
                hit = self._hit(run)
                if hit is not None and hit[0] not in found:
                    found[hit[0]] = hit[1]
                    if run.parent_run_id is not None:
                        parents.add(run.parent_run_id)
        for parent in parents - self._read_parents:
            self._read_parents.add(parent)
            text = f"attributes.parent_run_id = '{parent}' and attributes.status = 'finished'"
            for run in self._search(text):
                hit = self._hit(run, check=False)
                if hit is not None:
                    self._known.setdefault(*hit)
        return found

    def _search(self, text: str) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = self.tracking.search_runs(
                [self.experiment_id], filter=text, max_results=1000, page_token=token
            )
            runs.extend(page)
            token = page.next_page_token
            if token is None:
                return runs

    def _hit(self, run: Run, *, check: bool = True) -> tuple[str, R.CachedOutput] | None:
        key, raw = run.tags.get(R.KEY), run.tags.get(R.OUTPUT)
        if key is None or raw is None or run.tags.get(R.STATUS) not in ("finished", "cached"):
            return None
        ref = OutputRef.from_json(raw)
        if check and not self.stores.artifacts.exists(ref.digest):
            return None
        # A hit on a cached record points at the run that computed the output.
        return key, R.CachedOutput(run.tags.get(R.CACHED_FROM) or run.run_id, ref)
