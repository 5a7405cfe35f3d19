"""``keel pipeline schedule | schedules | unschedule | pause | unpause | dispatches`` and
``keel pipeline trigger add | list | delete``: the commands that run pipelines by cron
and on events (``keel server`` starts the runs). ``register(app)`` adds them to
``keel pipeline``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import (
    JsonOption,
    Table,
    out_console,
    plain,
    print_json,
    short_id,
    timestamp,
)
from keel.cli._output import status_text as _status

if TYPE_CHECKING:
    from keel.pipelines.schedules import PipelineSchedule, PipelineTrigger

__all__ = ["register", "trigger_app"]

trigger_app = typer.Typer(
    help="Triggers: run a pipeline on an alert, a new model or dataset version, or a webhook.",
    no_args_is_help=True,
)

ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="KEY=VALUE, converted to the parameter's type."),
]
ExecutorOption = Annotated[
    str, typer.Option("--executor", help="local (worker processes), inline or ray.")
]
NameArg = Annotated[str, typer.Argument(help="The schedule's name.")]


def _params(pairs: list[str] | None) -> dict[str, str] | None:
    from keel.cli.pipeline import _params as parse

    return None if pairs is None else parse(pairs)


def _status_of(status: str | None) -> object:
    return _status(status) if status else plain("—")


def _print_schedules(schedules: list[PipelineSchedule]) -> None:
    console = out_console()
    if not schedules:
        console.print(
            'no schedules (keel pipeline schedule NAME --cron "0 3 * * *" --pipeline REF)'
        )
        return
    table = Table()
    for column, kind in (
        ("schedule", "id"), ("pipeline", "text"), ("when", "text"), ("missed", "status"),
        ("next run", "time"), ("last run", "time"), ("status", "status"), ("pipeline run", "id"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for s in schedules:
        table.add_row(
            plain(s.name),
            plain(s.pipeline),
            plain(f"{s.cron} ({s.timezone})"),
            s.missed,
            timestamp(s.next_run_at) if s.enabled else "paused",
            timestamp(s.last_run_at),
            _status_of(s.last_status),
            short_id(s.last_run_id),
        )
    console.print(table)
    for s in schedules:
        if s.last_error:
            console.print(plain(f"{s.name}: {s.last_error}", "red"), soft_wrap=True)


def _show_one(schedule: PipelineSchedule, as_json: bool, verb: str) -> None:
    if as_json:
        print_json(schedule.to_dict())
        return
    when = timestamp(schedule.next_run_at) if schedule.enabled else "paused"
    out_console().print(
        plain(
            f"schedule {schedule.name} {verb}: {schedule.pipeline} at '{schedule.cron}' "
            f"({schedule.timezone}); next run {when}"
        ),
        soft_wrap=True,
    )


def schedule(
    name: NameArg,
    *,
    cron: Annotated[
        str, typer.Option("--cron", help='When: "0 3 * * *" (6 fields: seconds last).')
    ],
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline", help="MODULE:NAME or FILE.py:NAME (default: the schedule's own)."
        ),
    ] = None,
    param: ParamOption = None,
    missed: Annotated[str, typer.Option("--missed", help="latest, skip or all.")] = "latest",
    max_catchup: Annotated[
        int, typer.Option("--max-catchup", help="With --missed all: at most this many.")
    ] = 10,
    timezone: Annotated[str, typer.Option("--timezone", "--tz", help="IANA time zone.")] = "UTC",
    executor: ExecutorOption = "local",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a schedule of that name.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline at the times a cron expression names (keel server starts the runs).

    Without --pipeline, the existing schedule NAME gets the new time and options.
    """
    from keel.pipelines.schedules_api import schedule_pipeline

    params = _params(param)
    if pipeline is None:
        from keel.stores import current_stores

        old = current_stores().pipeline_schedules.get_schedule(name)
        pipeline, replace = old.pipeline, True
        params = old.params if params is None else params
    created = schedule_pipeline(
        name,
        pipeline,
        cron,
        timezone=timezone,
        params=params,
        missed=missed,
        max_catchup=max_catchup,
        executor=executor,
        replace=replace,
    )
    _show_one(created, as_json, "saved")


def schedules(as_json: JsonOption = False) -> None:
    """List the pipeline schedules with their next and last run."""
    from keel.pipelines.schedules_api import list_schedules

    found = list_schedules()
    if as_json:
        print_json({"schedules": [s.to_dict() for s in found]})
        return
    _print_schedules(found)


def unschedule(name: NameArg) -> None:
    """Delete a schedule (a run it started goes on)."""
    from keel.pipelines.schedules_api import delete_schedule

    delete_schedule(name)
    out_console().print(plain(f"schedule {name} deleted"))


def pause(name: NameArg, as_json: JsonOption = False) -> None:
    """Pause a schedule: it starts no run until unpaused."""
    from keel.pipelines.schedules_api import pause_schedule

    _show_one(pause_schedule(name), as_json, "paused")


def unpause(name: NameArg, as_json: JsonOption = False) -> None:
    """Resume a paused schedule from now (what it missed while paused is not run)."""
    from keel.pipelines.schedules_api import resume_schedule

    _show_one(resume_schedule(name), as_json, "resumed")


def dispatches(
    name: Annotated[
        str | None, typer.Argument(help="A schedule or trigger (default: all).")
    ] = None,
    *,
    max_results: Annotated[int, typer.Option("--max-results", "-n", help="How many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the runs schedules and triggers started, newest first."""
    from keel.pipelines.schedules_api import list_dispatches

    found = list_dispatches(name, limit=max_results)
    if as_json:
        print_json({"dispatches": [d.to_dict() for d in found]})
        return
    console = out_console()
    if not found:
        console.print("no runs started by schedules or triggers yet")
        return
    table = Table()
    for column, kind in (
        ("started", "time"), ("by", "status"), ("name", "id"), ("due", "time"),
        ("status", "status"), ("pipeline run", "id"), ("error", "text"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for d in found:
        table.add_row(
            timestamp(d.started_at),
            d.source,
            plain(d.name),
            timestamp(d.due_at),
            _status_of(d.status),
            short_id(d.run_id),
            plain(d.error or ""),
        )
    console.print(table)


@trigger_app.command("add")
def trigger_add(
    name: Annotated[str, typer.Argument(help="The trigger's name.")],
    *,
    pipeline: Annotated[str, typer.Option("--pipeline", help="MODULE:NAME or FILE.py:NAME.")],
    on: Annotated[str, typer.Option("--on", help="alert, model_version, dataset or webhook.")],
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="The alert rule ('*': any), model or dataset name."),
    ] = None,
    param: ParamOption = None,
    executor: ExecutorOption = "local",
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline when an event happens; params may use {version}, {model}, {rule}…."""
    from keel.pipelines.schedules_api import add_trigger

    created = add_trigger(name, pipeline, on, subject, params=_params(param), executor=executor)
    if as_json:
        print_json(created.to_dict())
        return
    console = out_console()
    what = f"{created.kind} {created.subject}".strip()
    console.print(
        plain(f"trigger {created.name} saved: {created.pipeline} on {what}"), soft_wrap=True
    )
    if created.token:
        console.print(
            plain(
                f"webhook: POST /api/v1/pipelines/triggers/{created.name}/fire with header "
                f"Keel-Trigger-Token: {created.token}\n(the token is shown only now)"
            ),
            soft_wrap=True,
        )


def _print_triggers(triggers: list[PipelineTrigger]) -> None:
    console = out_console()
    if not triggers:
        console.print("no triggers (keel pipeline trigger add NAME --pipeline REF --on KIND)")
        return
    table = Table()
    for column, kind in (
        ("trigger", "id"), ("on", "status"), ("subject", "text"), ("pipeline", "text"),
        ("fired", "number"), ("last fired", "time"), ("status", "status"),
        ("pipeline run", "id"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for t in triggers:
        table.add_row(
            plain(t.name),
            t.kind,
            plain(t.subject or "—"),
            plain(t.pipeline),
            str(t.fired),
            timestamp(t.last_fired_at),
            _status_of(t.last_status),
            short_id(t.last_run_id),
        )
    console.print(table)


@trigger_app.command("list")
def trigger_list(
    kind: Annotated[str | None, typer.Option("--on", help="Only triggers of this kind.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List the triggers and how often each has fired."""
    from keel.pipelines.schedules_api import list_triggers

    found = list_triggers(kind)
    if as_json:
        print_json({"triggers": [t.to_dict() for t in found]})
        return
    _print_triggers(found)


@trigger_app.command("delete")
def trigger_delete(name: Annotated[str, typer.Argument(help="The trigger's name.")]) -> None:
    """Delete a trigger."""
    from keel.pipelines.schedules_api import delete_trigger

    delete_trigger(name)
    out_console().print(plain(f"trigger {name} deleted"))


def register(app: typer.Typer) -> None:
    """Add the schedule and trigger commands to ``keel pipeline``."""
    app.command("schedule")(schedule)
    app.command("schedules")(schedules)
    app.command("unschedule")(unschedule)
    app.command("pause")(pause)
    app.command("unpause")(unpause)
    app.command("dispatches")(dispatches)
    app.add_typer(trigger_app, name="trigger")
