"""Pipeline and step runs as tracking records (no tables of their own yet).

A pipeline run is a Keel run in the experiment named after the pipeline; each step run is
a nested run (``parent_run_id``) with the step's parameters as params and everything else as
``keel.*`` tags — its status (``cached`` and ``skipped`` included), cache key, code digest,
upstream nodes, input and output digests — and its captured logs as the ``logs.txt``
artifact. A cache lookup is a run search on the ``keel.cache_key`` tag, batched: one query
answers up to :data:`KEYS_PER_QUERY` keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from keel.errors import AlreadyExists, InvalidInput, NotFound
from keel.pipelines.entities import PipelineRunInfo, PipelineSummary, StepRunInfo
from keel.pipelines.materialize import OutputRef
from keel.store.clock import now_ms
from keel.tracking.context import current_user, source_info, writer_id
from keel.tracking.entities import ArtifactEntry, DatasetInput, Run, RunStatus

if TYPE_CHECKING:
    from keel.stores import Stores

__all__ = ["KEYS_PER_QUERY", "Recorder", "list_pipeline_runs", "list_pipelines", "read_run"]

KEYS_PER_QUERY = 100  # 100 keys × 67 characters stay under the filter's 10,000
LOG_FILE = "logs.txt"
KIND, PIPELINE, REF, RESUME_OF, NO_CACHE = (
    "keel.kind",
    "keel.pipeline",
    "keel.pipeline.ref",
    "keel.resume_of",
    "keel.no_cache",
)
NODE, STEP, KEY, CODE, STATUS = (
    "keel.node",
    "keel.step",
    "keel.cache_key",
    "keel.code_digest",
    "keel.status",
)
OUTPUT, OUTPUT_DIGEST, UPSTREAM, INPUTS, ATTEMPTS, ERROR, CACHED_FROM = (
    "keel.output",
    "keel.output.digest",
    "keel.upstream",
    "keel.inputs",
    "keel.attempts",
    "keel.error",
    "keel.cached_from",
)
_MAX_ERROR = 4000
_FINAL = {
    "finished": RunStatus.FINISHED,
    "cached": RunStatus.FINISHED,
    "failed": RunStatus.FAILED,
    "skipped": RunStatus.KILLED,
}


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class CachedOutput:
    """An earlier successful step run whose output a cache hit reuses."""

    run_id: str
    output: OutputRef


class Recorder:
    """Writes one pipeline's runs and step runs through the tracking store."""

    def __init__(self, stores: Stores, pipeline: str) -> None:
        self.stores = stores
        self.tracking = stores.tracking
        self.pipeline = pipeline
        self.experiment_id = self._experiment(pipeline)
        self.writer = writer_id()
        self.user = current_user()
        self._params: dict[str, dict[str, str]] = {}
        # Step runs of earlier pipeline runs that produced a cache hit: their siblings are
        # likely the next hits (a rerun hits step after step), so they are read at once.
        self._known: dict[str, CachedOutput] = {}
        self._read_parents: set[str] = set()

    def _experiment(self, name: str) -> str:
        found = self.tracking.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            tags = {KIND: "pipeline"}
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
        tags = {KIND: "pipeline", PIPELINE: self.pipeline, NO_CACHE: str(no_cache).lower()}
        if ref is not None:
            tags[REF] = ref
        if resume_of is not None:
            tags[RESUME_OF] = resume_of
        src = source_info()
        start = now_ms()
        run = self.tracking.create_run(
            self.experiment_id,
            name=f"{self.pipeline}-{start}",
            user=self.user,
            start_time=start,
            source=src.source,
            git_commit=src.git_commit,
            git_dirty=src.git_dirty,
            tags=tags,
            writer=self.writer,
        )
        if params:
            self.tracking.log_batch(run.run_id, params={k: _json(v) for k, v in params.items()})
        return run.run_id

    def end_pipeline(self, run_id: str, status: RunStatus) -> None:
        """Record the pipeline run's final status."""
        self.tracking.end_run(run_id, status, now_ms())

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
        all_tags = {
            KIND: "step",
            PIPELINE: self.pipeline,
            NODE: node,
            STEP: step,
            STATUS: status,
            **tags,
        }
        run = self.tracking.create_run(
            self.experiment_id,
            name=node,
            user=current_user(),
            start_time=now_ms(),
            parent_run_id=parent,
            tags=all_tags,
            writer=self.writer,
        )
        if params:  # written with the end-of-step tags: one transaction fewer per step
            self._params[run.run_id] = {k: _json(v) for k, v in params.items()}
        if datasets:
            self.tracking.log_inputs(
                run.run_id,
                [
                    DatasetInput(path, digest, path, "step-input")
                    for path, digest in datasets.items()
                ],
            )
        return run.run_id

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
        tags = {STATUS: status}
        if output is not None:
            tags[OUTPUT] = output.to_json()
            tags[OUTPUT_DIGEST] = output.digest
        if attempts:
            tags[ATTEMPTS] = str(attempts)
        if error:
            tags[ERROR] = error if len(error) <= _MAX_ERROR else error[: _MAX_ERROR - 1] + "…"
        if cached_from:
            tags[CACHED_FROM] = cached_from
        self.tracking.log_batch(run_id, params=self._params.pop(run_id, None), tags=tags)
        if logs:
            blob = self.stores.artifacts.put_bytes(logs.encode("utf-8", "replace"))
            self.tracking.add_artifacts(run_id, [ArtifactEntry(LOG_FILE, blob.digest, blob.size)])
        self.tracking.end_run(run_id, _FINAL[status], now_ms())

    def heartbeat(self, run_ids: Iterable[str]) -> None:
        """Tell the store these runs' writer (this process) is alive."""
        now = now_ms()
        for run_id in run_ids:
            self.tracking.heartbeat(run_id, self.writer, now)

    def find_cached(self, keys: Sequence[str]) -> dict[str, CachedOutput]:
        """Return, for each key an earlier finished step run has, that run and its output.

        A run whose output blob is no longer in the artifact store is not a hit.
        """
        found: dict[str, CachedOutput] = {}
        wanted = []
        for key in sorted(set(keys)):
            known = self._known.get(key)
            if known is not None and self.stores.artifacts.exists(known.output.digest):
                found[key] = known
            else:
                wanted.append(key)
        parents: set[str] = set()
        for start in range(0, len(wanted), KEYS_PER_QUERY):
            chunk = wanted[start : start + KEYS_PER_QUERY]
            quoted = ", ".join(f"'{k}'" for k in chunk)  # keys are hex digests: no quoting
            text = f"tags.`{KEY}` in ({quoted}) and attributes.status = 'finished'"
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

    def _hit(self, run: Run, *, check: bool = True) -> tuple[str, CachedOutput] | None:
        key, raw = run.tags.get(KEY), run.tags.get(OUTPUT)
        if key is None or raw is None or run.tags.get(STATUS) not in ("finished", "cached"):
            return None
        ref = OutputRef.from_json(raw)
        if check and not self.stores.artifacts.exists(ref.digest):
            return None
        # A hit on a cached record points at the run that computed the output.
        return key, CachedOutput(run.tags.get(CACHED_FROM) or run.run_id, ref)


def _step_info(run: Run) -> StepRunInfo:
    tags = run.tags
    raw = tags.get(OUTPUT)
    status = tags.get(STATUS, run.status.value)
    if status == "running" and run.status != RunStatus.RUNNING:
        status = "failed"  # its writer died (a heartbeat timeout ended it)
    return StepRunInfo(
        node=tags.get(NODE, run.name),
        step=tags.get(STEP, run.name),
        run_id=run.run_id,
        status=status,
        start_time=run.start_time,
        end_time=run.end_time,
        cache_key=tags.get(KEY),
        upstream=tuple(orjson.loads(tags[UPSTREAM])) if UPSTREAM in tags else (),
        params=dict(run.params),
        output=None if raw is None else OutputRef.from_json(raw),
        attempts=int(tags.get(ATTEMPTS, "0") or 0),
        error=tags.get(ERROR) or tags.get("keel.failure"),
        cached_from=tags.get(CACHED_FROM),
    )


def _all_runs(stores: Stores, experiment_ids: list[str], text: str, order: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = stores.tracking.search_runs(
            experiment_ids, filter=text, order_by=order, max_results=5000, page_token=token
        )
        runs.extend(page)
        token = page.next_page_token
        if token is None:
            return runs


def read_run(stores: Stores, run_id: str) -> PipelineRunInfo:
    """Return the pipeline run ``run_id`` with its step runs (by start time)."""
    run = stores.tracking.get_run(run_id)
    if run.tags.get(KIND) != "pipeline":
        raise InvalidInput(f"run {run_id} is not a pipeline run (see keel pipeline runs)")
    steps = _all_runs(
        stores,
        [run.experiment_id],
        f"attributes.parent_run_id = '{run.run_id}'",
        "attributes.start_time asc",
    )
    infos = sorted((_step_info(s) for s in steps), key=lambda s: (s.start_time, s.node))
    return PipelineRunInfo(
        run_id=run.run_id,
        pipeline=run.tags.get(PIPELINE, ""),
        experiment_id=run.experiment_id,
        status=run.status.value,
        start_time=run.start_time,
        end_time=run.end_time,
        params=dict(run.params),
        ref=run.tags.get(REF),
        resume_of=run.tags.get(RESUME_OF),
        steps=infos,
    )


def _pipeline_experiments(stores: Stores, name: str | None) -> list[str]:
    if name is not None:
        found = stores.tracking.get_experiment_by_name(name)
        if found is None or found.tags.get(KIND) != "pipeline":
            raise NotFound(f"no pipeline named {name!r} has run (see keel pipeline list)")
        return [found.experiment_id]
    return [
        e.experiment_id
        for e in stores.tracking.list_experiments()
        if e.tags.get(KIND) == "pipeline"
    ]


def list_pipeline_runs(
    stores: Stores, name: str | None = None, *, max_results: int = 100
) -> list[PipelineRunInfo]:
    """Return pipeline runs (of ``name``, or of every pipeline), newest first, no steps."""
    ids = _pipeline_experiments(stores, name)
    if not ids:
        return []
    page = stores.tracking.search_runs(
        ids,
        filter=f"tags.`{KIND}` = 'pipeline'",
        order_by="attributes.start_time desc",
        max_results=max_results,
    )
    return [
        PipelineRunInfo(
            run_id=r.run_id,
            pipeline=r.tags.get(PIPELINE, ""),
            experiment_id=r.experiment_id,
            status=r.status.value,
            start_time=r.start_time,
            end_time=r.end_time,
            params=dict(r.params),
            ref=r.tags.get(REF),
            resume_of=r.tags.get(RESUME_OF),
        )
        for r in page
    ]


def list_pipelines(stores: Stores) -> list[PipelineSummary]:
    """Return every pipeline that has run, by name, with its run count and latest run."""
    out = []
    for experiment in stores.tracking.list_experiments():
        if experiment.tags.get(KIND) != "pipeline":
            continue
        runs = _all_runs(
            stores,
            [experiment.experiment_id],
            f"tags.`{KIND}` = 'pipeline'",
            "attributes.start_time desc",
        )
        last = runs[0] if runs else None
        out.append(
            PipelineSummary(
                name=experiment.name,
                experiment_id=experiment.experiment_id,
                runs=len(runs),
                last_run_id=last.run_id if last else None,
                last_status=last.status.value if last else None,
                last_start_time=last.start_time if last else None,
            )
        )
    return sorted(out, key=lambda p: p.name)
