"""The schedules and triggers SDK: run pipelines by cron, on alerts, versions and webhooks.

    keel.schedule_pipeline("nightly", "flows.py:train", "0 3 * * *", params={"n": 200})
    keel.add_trigger("retrain", "flows.py:train", "model_version", "churn",
                     params={"version": "{version}"})

The pipeline is imported here, in the caller's process, so a reference that does not
load or params the pipeline does not take are an ``InvalidInput`` now, not at 3 a.m.; a
file reference is made absolute and a module reference remembers the working directory,
so ``keel server`` runs it from anywhere. The runs happen in ``keel server``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError

if TYPE_CHECKING:
    from keel.pipelines.definition import Pipeline
    from keel.pipelines.schedule_store import ScheduleStore
    from keel.pipelines.schedules import Dispatch, PipelineSchedule, PipelineTrigger

__all__ = [
    "add_trigger",
    "delete_schedule",
    "delete_trigger",
    "list_dispatches",
    "list_schedules",
    "list_triggers",
    "pause_schedule",
    "resume_schedule",
    "schedule_pipeline",
]


def _store() -> ScheduleStore:
    from keel.stores import current_stores

    return current_stores().pipeline_schedules


def _resolve(pipeline: str | Pipeline, params: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """Return (reference, workdir) for ``pipeline`` after importing it and checking
    ``params`` against its parameters."""
    from keel.pipelines.api import load_pipeline
    from keel.pipelines.definition import Pipeline
    from keel.pipelines.schedules import check_params, check_pipeline_ref

    if isinstance(pipeline, Pipeline):
        if pipeline.ref is None:
            raise InvalidInput(
                f"pipeline {pipeline.name!r} is defined in a script or notebook and cannot be "
                "imported by the server; name it as FILE.py:NAME"
            )
        ref = pipeline.ref
    else:
        ref = check_pipeline_ref(pipeline)
    target, _, name = ref.rpartition(":")
    if target.endswith(".py"):
        ref = f"{Path(target).resolve()}:{name}"
    try:
        loaded = load_pipeline(ref)
    except InvalidInput:
        raise
    except KeelError as exc:
        raise InvalidInput(f"pipeline {ref!r} cannot be loaded: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - importing user code may raise anything
        raise InvalidInput(
            f"pipeline {ref!r} cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None
    texts = check_params(params)
    known = loaded.signature.parameters
    unknown = sorted(set(texts) - set(known))
    if unknown:
        raise InvalidInput(
            f"pipeline {loaded.name!r} has no parameter {unknown[0]!r} "
            f"(parameters: {', '.join(known) or 'none'})"
        )
    if not any("{" in v for v in texts.values()):
        loaded.parse_params(texts)  # types, and every parameter without a default given
    else:
        # A value naming an event's {field} is known only when the trigger fires: check
        # the types of the others only.
        from keel.pipelines.params import coerce_text

        for key, text in texts.items():
            if "{" not in text:
                hint = loaded.hints.get(key, inspect.Parameter.empty)
                coerce_text(f"pipeline {loaded.name!r}", key, text, hint)
    return ref, None if target.endswith(".py") else os.getcwd()


def schedule_pipeline(
    name: str,
    pipeline: str | Pipeline,
    cron: str,
    *,
    timezone: str = "UTC",
    params: Mapping[str, Any] | None = None,
    missed: str = "latest",
    max_catchup: int = 10,
    executor: str = "local",
    enabled: bool = True,
    replace: bool = False,
) -> PipelineSchedule:
    """Return a new schedule running ``pipeline`` at the times ``cron`` names in ``timezone``.

    ``cron`` has five fields (``"0 3 * * *"``), or six with seconds last. ``missed`` says
    what happens to due times a stopped server or a still-running run missed: ``latest``
    (one catch-up run), ``skip`` (none) or ``all`` (each, at most ``max_catchup``).
    ``AlreadyExists`` if ``name`` is taken, unless ``replace``.
    """
    from keel.pipelines.schedule_store import new_schedule

    ref, workdir = _resolve(pipeline, params)
    schedule = new_schedule(
        name,
        ref,
        cron,
        timezone=timezone,
        params=params,
        missed=missed,
        max_catchup=max_catchup,
        executor=executor,
        workdir=workdir,
        enabled=enabled,
    )
    return _store().create_schedule(schedule, replace=replace)


def list_schedules() -> list[PipelineSchedule]:
    """Return every pipeline schedule with its next and last run, by name."""
    return _store().list_schedules()


def pause_schedule(name: str) -> PipelineSchedule:
    """Return the schedule paused: it starts no run until resumed."""
    return _store().set_schedule_enabled(name, False)


def resume_schedule(name: str) -> PipelineSchedule:
    """Return the schedule resumed, its next run planned from now (a pause is not caught up)."""
    return _store().set_schedule_enabled(name, True)


def delete_schedule(name: str) -> None:
    """Delete a schedule (a run it started goes on)."""
    _store().delete_schedule(name)


def add_trigger(
    name: str,
    pipeline: str | Pipeline,
    kind: str,
    subject: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    executor: str = "local",
    enabled: bool = True,
) -> PipelineTrigger:
    """Return a new trigger running ``pipeline`` when ``kind`` happens to ``subject``.

    ``kind``: ``alert`` (subject a rule name, or ``"*"`` for every rule),
    ``model_version`` (a registered model's name), ``dataset`` (a dataset's name) or
    ``webhook`` (no subject; the answer's ``token`` is shown only this once). ``params``
    may name the event's fields as ``{version}``, ``{model}``, ``{rule}``, ``{dataset}``….
    """
    from keel.pipelines.schedule_store import new_trigger

    ref, workdir = _resolve(pipeline, params)
    trigger = new_trigger(
        name,
        ref,
        kind,
        subject,
        params=params,
        executor=executor,
        workdir=workdir,
        enabled=enabled,
    )
    return _store().create_trigger(trigger)


def list_triggers(kind: str | None = None) -> list[PipelineTrigger]:
    """Return every trigger (of one kind if given), by name; never a token."""
    return _store().list_triggers(kind=kind)


def delete_trigger(name: str) -> None:
    """Delete a trigger."""
    _store().delete_trigger(name)


def list_dispatches(
    name: str | None = None, *, source: str | None = None, limit: int = 100
) -> list[Dispatch]:
    """Return the runs schedules and triggers started (of one if named), newest first."""
    return _store().list_dispatches(source=source, name=name, limit=limit)
