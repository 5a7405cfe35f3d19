"""The pipelines SDK: run, resume and inspect pipeline runs."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import multiprocessing
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.errors import Conflict, InvalidInput, NotFound
from keel.pipelines.definition import Pipeline
from keel.pipelines.errors import PipelineFailed
from keel.tracking.entities import RunStatus

if TYPE_CHECKING:
    from keel.pipelines.entities import PipelineRunInfo, PipelineSummary, StepRunInfo
    from keel.stores import Stores

__all__ = [
    "get_pipeline_run",
    "list_pipeline_runs",
    "list_pipelines",
    "load_pipeline",
    "load_step_output",
    "resume_pipeline",
    "run_pipeline",
]


def _stores() -> Stores:
    from keel.stores import current_stores

    return current_stores()


def run_pipeline(
    pipeline: Pipeline,
    params: Mapping[str, Any] | None = None,
    *,
    no_cache: bool = False,
    executor: str = "local",
    max_workers: int | None = None,
    raise_on_failure: bool = True,
    address: str | None = None,
    _resume: PipelineRunInfo | None = None,
) -> PipelineRunInfo:
    """Run ``pipeline`` with ``params`` and return the recorded run with its step runs.

    Steps whose cache key matches an earlier successful step run are ``cached`` (their
    outputs reused) unless ``no_cache``. A failed step stops only what depends on it; the
    run then ends failed and ``PipelineFailed`` is raised (unless ``raise_on_failure`` is
    False) naming the failed steps and the run id to resume.
    """
    from keel.config import get_settings
    from keel.pipelines.engine import run_dag
    from keel.pipelines.pool import open_executor
    from keel.pipelines.records import Recorder, read_run
    from keel.pipelines.worker import StoreSpec

    if not isinstance(pipeline, Pipeline):
        raise InvalidInput(f"expected a @keel.pipeline, got {type(pipeline).__name__}")
    if not isinstance(no_cache, bool):
        raise InvalidInput("no_cache must be True or False")
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A worker importing an unguarded script's main module: it must not run it again.
        raise InvalidInput(
            "a pipeline is being run while a worker imports the main module; run it under "
            '`if __name__ == "__main__":`'
        )
    values = pipeline.bind(params)
    dag = pipeline.graph(values)
    stores = _stores()
    settings = get_settings()
    pool = open_executor(executor, max_workers, address=address)
    spec = StoreSpec(stores.tracking_uri, stores.artifact_uri, str(settings.home), settings.token)
    recorder = Recorder(stores, pipeline.name)
    run_id = recorder.start_pipeline(
        pipeline.ref,
        values,
        no_cache=no_cache,
        resume_of=None if _resume is None else _resume.run_id,
    )
    prior = {} if _resume is None else {s.node: s for s in _resume.steps}
    try:
        states = run_dag(
            dag,
            recorder=recorder,
            parent_run_id=run_id,
            executor=pool,
            spec=spec,
            no_cache=no_cache,
            prior=prior,
        )
    except BaseException as exc:
        pool.close()
        interrupted = isinstance(exc, KeyboardInterrupt)
        with contextlib.suppress(Exception):  # keep the error that stopped the run
            recorder.end_pipeline(run_id, RunStatus.KILLED if interrupted else RunStatus.FAILED)
        raise
    pool.close()
    failed = any(s.status == "failed" for s in states.values())
    recorder.end_pipeline(run_id, RunStatus.FAILED if failed else RunStatus.FINISHED)
    info = read_run(stores, run_id)
    if failed and raise_on_failure:
        bad = tuple(s.node for s in info.steps if s.status == "failed")
        first = next(s for s in info.steps if s.status == "failed")
        raise PipelineFailed(
            f"pipeline {pipeline.name!r} run {run_id} failed at step {first.node!r}: "
            f"{first.error}; fix it and run `keel pipeline resume {run_id}`",
            run_id=run_id,
            failed=bad,
        )
    return info


def resume_pipeline(
    run_id: str,
    *,
    pipeline: Pipeline | None = None,
    executor: str = "local",
    max_workers: int | None = None,
    raise_on_failure: bool = True,
    address: str | None = None,
) -> PipelineRunInfo:
    """Re-run a failed pipeline run from its failed steps; return the new run.

    Every step that finished (or was cached) in ``run_id`` with the same cache key now is
    reused as it is; the rest run. The pipeline is imported from the run's recorded
    ``module:name`` unless given.
    """
    old = get_pipeline_run(run_id)
    if old.status == "running":
        raise Conflict(f"pipeline run {run_id} is still running; wait for it to end")
    if old.status == "finished":
        raise InvalidInput(
            f"pipeline run {run_id} finished; there is nothing to resume (run it again instead)"
        )
    if pipeline is None:
        if old.ref is None:
            raise InvalidInput(
                f"pipeline run {run_id} was started from a script or notebook, so its pipeline "
                "cannot be imported; call resume_pipeline(run_id, pipeline=...) from there"
            )
        pipeline = load_pipeline(old.ref)
    if pipeline.name != old.pipeline:
        raise InvalidInput(
            f"run {run_id} is a run of pipeline {old.pipeline!r}, not {pipeline.name!r}"
        )
    try:
        params = {k: orjson.loads(v) for k, v in old.params.items()}
    except orjson.JSONDecodeError:
        raise InvalidInput(f"pipeline run {run_id} has malformed parameters") from None
    return run_pipeline(
        pipeline,
        params,
        no_cache=_no_cache(run_id),
        executor=executor,
        max_workers=max_workers,
        raise_on_failure=raise_on_failure,
        address=address,
        _resume=old,
    )


def _no_cache(run_id: str) -> bool:
    from keel.pipelines.records import NO_CACHE

    return _stores().tracking.get_run(run_id).tags.get(NO_CACHE) == "true"


def load_pipeline(ref: str) -> Pipeline:
    """Return the pipeline ``MODULE:NAME`` or ``path/to/file.py:NAME`` names (imports it)."""
    if not isinstance(ref, str) or ref.count(":") < 1:
        raise InvalidInput(f"name a pipeline as MODULE:NAME or FILE.py:NAME, got {ref!r}")
    target, _, name = ref.rpartition(":")
    if not target or not name.replace(".", "_").isidentifier():
        raise InvalidInput(f"name a pipeline as MODULE:NAME or FILE.py:NAME, got {ref!r}")
    if target.endswith(".py"):
        module = _import_file(Path(target))
    else:
        if not all(part.isidentifier() for part in target.split(".")):
            raise InvalidInput(f"{target!r} is not a module name (nor a .py file)")
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: the project's modules
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise NotFound(f"cannot import module {target!r}: {exc}") from None
    value: Any = module
    for part in name.split("."):
        value = getattr(value, part, None)
    if not isinstance(value, Pipeline):
        kind = "nothing" if value is None else f"a {type(value).__name__}"
        raise InvalidInput(f"{ref!r} is {kind}, not a @keel.pipeline")
    return value


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise NotFound(f"no such file: {path}")
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # workers import its steps by module name, from here
    name = path.stem
    if not name.isidentifier():
        raise InvalidInput(f"{path.name} cannot be imported: its name is not a Python identifier")
    existing = sys.modules.get(name)
    if (
        existing is not None
        and Path(getattr(existing, "__file__", "") or "").resolve() == path.resolve()
    ):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def get_pipeline_run(run_id: str) -> PipelineRunInfo:
    """Return a pipeline run with its step runs."""
    from keel.pipelines.records import read_run
    from keel.tracking.validation import check_id

    return read_run(_stores(), check_id("pipeline run", run_id))


def list_pipeline_runs(name: str | None = None, *, max_results: int = 100) -> list[PipelineRunInfo]:
    """Return pipeline runs, newest first (steps not included; see get_pipeline_run)."""
    from keel.pipelines.records import list_pipeline_runs as _list

    if type(max_results) is not int or not 1 <= max_results <= 50_000:
        raise InvalidInput("max_results must be an integer from 1 to 50000")
    return _list(_stores(), name, max_results=max_results)


def list_pipelines() -> list[PipelineSummary]:
    """Return every pipeline that has run, with its run count and latest run."""
    from keel.pipelines.records import list_pipelines as _list

    return _list(_stores())


def load_step_output(run_id: str, node: str) -> Any:
    """Return the output a step of a pipeline run produced (or reused), read and verified."""
    from keel.pipelines.materialize import load_output

    step: StepRunInfo = get_pipeline_run(run_id).step(node)
    if step.output is None:
        raise NotFound(f"step {node!r} of pipeline run {run_id} has no output ({step.status})")
    return load_output(step.output, _stores().artifacts)
