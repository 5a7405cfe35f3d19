"""``keel pipeline run | resume | list | runs | show``, and the schedule and trigger
commands of :mod:`keel.cli.pipeline_schedules`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from keel.cli._output import (
    JsonOption,
    Table,
    duration,
    out_console,
    plain,
    print_json,
    short_id,
    status_text,
    timestamp,
)
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.pipelines.entities import PipelineRunInfo

__all__ = ["app"]

app = typer.Typer(
    help="Pipelines: run, resume and inspect runs; schedule them and trigger them on events.",
    no_args_is_help=True,
)

_STEP_STYLES = {"cached": "blue", "skipped": "dim", "finished": "green", "failed": "bold red"}
_MAX_PARAMS = 1000

ExecutorOption = Annotated[
    str,
    typer.Option("--executor", help="local (worker processes), ray, or inline (this process)."),
]
AddressOption = Annotated[
    str | None, typer.Option("--address", help="A Ray cluster (ray://host:10001 or auto).")
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", "-w", help="Worker processes (default: CPU count).")
]


def _params(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InvalidInput(f"--param {pair!r} must be KEY=VALUE")
        if key in out:
            raise InvalidInput(f"--param {key} is given twice")
        out[key] = value
    if len(out) > _MAX_PARAMS:
        raise InvalidInput(f"at most {_MAX_PARAMS} --param options")
    return out


def _step_status(status: str) -> Text:
    return Text(status, style=_STEP_STYLES.get(status, ""))


def _print_run(run: PipelineRunInfo) -> None:
    console = out_console()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(run.counts().items()))
    head = Text.assemble(
        ("pipeline ", "bold"),
        plain(run.pipeline),
        "  run ",
        plain(run.run_id),
        "  ",
        status_text(run.status),
        f"  {duration(run.duration_ms)}  ({counts or 'no steps'})",
    )
    console.print(head, soft_wrap=True)
    if run.resume_of:
        console.print(Text.assemble("resumes ", plain(run.resume_of)), soft_wrap=True)
    table = Table()
    for column, kind in (
        ("step", "id"), ("after", "text"), ("status", "status"), ("duration", "number"),
        ("attempts", "number"), ("output", "text"), ("cache key", "id"), ("note", "text"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for s in run.steps:
        output = "—" if s.output is None else f"{s.output.kind} {s.output.digest[:12]}"
        note = f"from {short_id(s.cached_from)}" if s.cached_from else ""
        after = ", ".join(s.upstream[:3]) + (
            f" +{len(s.upstream) - 3}" if len(s.upstream) > 3 else ""
        )
        table.add_row(
            plain(s.node),
            plain(after or "—"),
            _step_status(s.status),
            duration(s.duration_ms),
            str(s.attempts) if s.attempts else "—",
            output,
            short_id(s.cache_key),
            plain(note),
        )
    console.print(table)
    for s in run.steps:
        # under the table, not in it: a wrapping column gets no room on an 80-column
        # console, and the error is what the user must read to fix the step
        if s.error:
            console.print(Text.assemble("error in ", plain(s.node), ": ", plain(s.error)))


def _finish(run: PipelineRunInfo, as_json: bool) -> None:
    if as_json:
        print_json(run.to_dict())
    else:
        _print_run(run)
    if run.status == "failed":
        from keel.pipelines.errors import PipelineFailed

        failures = [s for s in run.steps if s.status == "failed"]
        failed = tuple(s.node for s in failures)
        if as_json:
            raise typer.Exit(1)
        why = f" ({failures[0].error[:200]})" if failures and failures[0].error else ""
        raise PipelineFailed(
            f"pipeline {run.pipeline!r} run {run.run_id} failed at step "
            f"{failed[0] if failed else '?'!r}{why}; fix it and run `keel pipeline resume "
            f"{run.run_id}`",
            run_id=run.run_id,
            failed=failed,
        )


@app.command("run")
def run_(
    target: Annotated[
        str, typer.Argument(help="The pipeline: MODULE:NAME or path/to/file.py:NAME.")
    ],
    *,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE, converted to the parameter's type."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run every step, reusing no earlier output.")
    ] = False,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline; steps whose inputs, parameters and code are unchanged are cached."""
    from keel.pipelines.api import load_pipeline, run_pipeline

    values = _params(param)
    pipeline = load_pipeline(target)
    params = pipeline.parse_params(values)
    run = run_pipeline(
        pipeline,
        params,
        no_cache=no_cache,
        executor=executor,
        max_workers=workers,
        raise_on_failure=False,
        address=address,
    )
    _finish(run, as_json)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="A failed pipeline run id (or unique prefix).")],
    *,
    executor: ExecutorOption = "local",
    address: AddressOption = None,
    workers: WorkersOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-run a failed pipeline run from its failed steps, reusing every step that succeeded."""
    from keel.cli.runs import resolve_run_id
    from keel.pipelines.api import resume_pipeline

    run = resume_pipeline(
        resolve_run_id(run_id),
        executor=executor,
        max_workers=workers,
        raise_on_failure=False,
        address=address,
    )
    _finish(run, as_json)


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List the pipelines that have run, with their latest run."""
    from keel.pipelines.api import list_pipelines

    pipelines = list_pipelines()
    if as_json:
        print_json({"pipelines": [p.to_dict() for p in pipelines]})
        return
    console = out_console()
    if not pipelines:
        console.print("no pipeline has run yet (keel pipeline run MODULE:NAME)")
        return
    table = Table()
    for column, kind in (
        ("pipeline", "id"), ("runs", "number"), ("last run", "id"), ("status", "status"),
        ("start", "time"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for p in pipelines:
        table.add_row(
            plain(p.name),
            str(p.runs),
            short_id(p.last_run_id),
            status_text(p.last_status or "—"),
            timestamp(p.last_start_time),
        )
    console.print(table)


@app.command()
def runs(
    name: Annotated[str | None, typer.Argument(help="A pipeline name (default: all).")] = None,
    *,
    max_results: Annotated[int, typer.Option("--max-results", "-n", help="How many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List pipeline runs, newest first."""
    from keel.pipelines.api import list_pipeline_runs

    found = list_pipeline_runs(name, max_results=max_results)
    if as_json:
        print_json({"runs": [r.to_dict() for r in found]})
        return
    console = out_console()
    if not found:
        console.print("no pipeline runs yet")
        return
    table = Table()
    for column, kind in (
        ("run", "id"), ("pipeline", "id"), ("status", "status"), ("start", "time"),
        ("duration", "number"), ("params", "text"), ("resumes", "id"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for r in found:
        params = " ".join(f"{k}={v}" for k, v in sorted(r.params.items()))
        table.add_row(
            short_id(r.run_id),
            plain(r.pipeline),
            status_text(r.status),
            timestamp(r.start_time),
            duration(r.duration_ms),
            plain(params),
            short_id(r.resume_of),
        )
    console.print(table)


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(help="A pipeline run id (or unique prefix).")],
    *,
    logs: Annotated[
        str | None, typer.Option("--logs", help="Print the captured logs of this step.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a pipeline run: each step's status (cached too), timing, output and cache key."""
    from keel.cli.runs import resolve_run_id
    from keel.pipelines.api import get_pipeline_run

    run = get_pipeline_run(resolve_run_id(run_id))
    if logs is not None:
        _print_logs(run, logs)
        return
    if as_json:
        print_json(run.to_dict())
        return
    _print_run(run)


def _print_logs(run: PipelineRunInfo, node: str) -> None:
    import sys

    import keel
    from keel.errors import NotFound
    from keel.pipelines.records import LOG_FILE

    step = run.step(node)
    entries = [a for a in keel.list_artifacts(step.run_id) if a.path == LOG_FILE]
    if not entries:
        raise NotFound(f"step {node!r} of run {run.run_id} captured no logs ({step.status})")
    from keel.stores import current_stores

    data = current_stores().artifacts.read_bytes(entries[0].digest, name=LOG_FILE)
    sys.stdout.write(data.decode("utf-8", "replace"))
    sys.stdout.flush()


def _register_schedules() -> None:
    from keel.cli.pipeline_schedules import register

    register(app)


_register_schedules()
