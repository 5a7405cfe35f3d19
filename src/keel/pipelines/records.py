"""Pipeline and step runs as tracking records (no tables of their own yet), and reading them.

A pipeline run is a Keel run in the experiment named after the pipeline; each step run is
a nested run (``parent_run_id``) with the step's parameters as params and everything else as
``keel.*`` tags — its status (``cached`` and ``skipped`` included), cache key, code digest,
upstream nodes, input and output digests — and its captured logs as the ``logs.txt``
artifact. A cache lookup is a run search on the ``keel.cache_key`` tag, batched: one query
answers up to :data:`KEYS_PER_QUERY` keys. ``Recorder`` (``keel.pipelines.recorder``,
re-exported here) writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from keel.errors import InvalidInput, NotFound
from keel.pipelines.entities import PipelineRunInfo, PipelineSummary, StepRunInfo, step_depths
from keel.pipelines.materialize import OutputRef
from keel.tracking.entities import Run, RunStatus

if TYPE_CHECKING:
    from keel.pipelines.recorder import Recorder
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


def to_json(value: Any) -> str:
    """Return a step or pipeline parameter as the JSON text its run records as a param."""
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class CachedOutput:
    """An earlier successful step run whose output a cache hit reuses."""

    run_id: str
    output: OutputRef


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


def _in_run_order(infos: list[StepRunInfo]) -> list[StepRunInfo]:
    """Steps by start time; steps that started in the same millisecond (cache hits are
    recorded that fast) upstream first, by their depth in the DAG, then by node."""
    depth = step_depths(infos)
    return sorted(infos, key=lambda s: (s.start_time, depth[s.node], s.node))


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
    infos = _in_run_order([_step_info(s) for s in steps])
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


def __getattr__(name: str) -> Any:
    # Recorder lives in keel.pipelines.recorder, which imports this module's names.
    if name == "Recorder":
        from keel.pipelines.recorder import Recorder

        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
