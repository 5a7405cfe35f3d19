"""The schedules-and-triggers store interface: every backend (SQL, REST) implements it.

A definition is built and checked once (:func:`new_schedule`, :func:`new_trigger`); a
store checks it again, saves it, and audits the change in the same transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from keel.errors import InvalidInput
from keel.pipelines.schedules import (
    DEFAULT_CATCHUP,
    MAX_CATCHUP,
    Dispatch,
    PipelineSchedule,
    PipelineTrigger,
    check_cron,
    check_executor,
    check_missed,
    check_name,
    check_params,
    check_pipeline_ref,
    check_timezone,
    check_trigger,
)

__all__ = ["MAX_DISPATCHES", "ScheduleStore", "check_limit", "new_schedule", "new_trigger"]

MAX_DISPATCHES = 1_000
MAX_WORKDIR = 4_096


def _workdir(workdir: object) -> str | None:
    if workdir is None:
        return None
    if not isinstance(workdir, str) or not 1 <= len(workdir) <= MAX_WORKDIR or "\x00" in workdir:
        raise InvalidInput(f"workdir must be a folder path of at most {MAX_WORKDIR} characters")
    return workdir


def new_schedule(
    name: str,
    pipeline: str,
    cron: str,
    *,
    timezone: str = "UTC",
    params: Mapping[str, Any] | None = None,
    missed: str = "latest",
    max_catchup: int = DEFAULT_CATCHUP,
    executor: str = "local",
    workdir: str | None = None,
    enabled: bool = True,
) -> PipelineSchedule:
    """Return a checked schedule definition (not saved); ``InvalidInput`` names what is wrong."""
    if isinstance(max_catchup, bool) or not isinstance(max_catchup, int):
        raise InvalidInput(f"max_catchup must be an integer from 1 to {MAX_CATCHUP}")
    if not 1 <= max_catchup <= MAX_CATCHUP:
        raise InvalidInput(f"max_catchup must be from 1 to {MAX_CATCHUP}, got {max_catchup}")
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be True or False")
    return PipelineSchedule(
        name=check_name(name),
        pipeline=check_pipeline_ref(pipeline),
        cron=check_cron(cron),
        timezone=check_timezone(timezone),
        params=check_params(params),
        missed=check_missed(missed),
        max_catchup=max_catchup,
        executor=check_executor(executor),
        workdir=_workdir(workdir),
        enabled=enabled,
    )


def new_trigger(
    name: str,
    pipeline: str,
    kind: str,
    subject: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    executor: str = "local",
    workdir: str | None = None,
    enabled: bool = True,
) -> PipelineTrigger:
    """Return a checked trigger definition (not saved); ``InvalidInput`` names what is wrong."""
    kind, subject = check_trigger(kind, subject)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be True or False")
    return PipelineTrigger(
        name=check_name(name, "trigger"),
        pipeline=check_pipeline_ref(pipeline),
        kind=kind,
        subject=subject,
        params=check_params(params),
        executor=check_executor(executor),
        workdir=_workdir(workdir),
        enabled=enabled,
    )


def recheck_schedule(s: PipelineSchedule) -> PipelineSchedule:
    """Return ``s`` checked again (a store does not trust its caller)."""
    if not isinstance(s, PipelineSchedule):
        raise InvalidInput(f"expected a PipelineSchedule, got {type(s).__name__}")
    checked = new_schedule(
        s.name,
        s.pipeline,
        s.cron,
        timezone=s.timezone,
        params=s.params,
        missed=s.missed,
        max_catchup=s.max_catchup,
        executor=s.executor,
        workdir=s.workdir,
        enabled=s.enabled,
    )
    return replace(s, params=checked.params)


def recheck_trigger(t: PipelineTrigger) -> PipelineTrigger:
    """Return ``t`` checked again (a store does not trust its caller)."""
    if not isinstance(t, PipelineTrigger):
        raise InvalidInput(f"expected a PipelineTrigger, got {type(t).__name__}")
    checked = new_trigger(
        t.name,
        t.pipeline,
        t.kind,
        t.subject,
        params=t.params,
        executor=t.executor,
        workdir=t.workdir,
        enabled=t.enabled,
    )
    return replace(t, params=checked.params, subject=checked.subject)


def check_limit(limit: object) -> int:
    """Return a valid number of dispatches to list (1..``MAX_DISPATCHES``)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_DISPATCHES:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_DISPATCHES}, not {limit!r}")
    return limit


class ScheduleStore(ABC):
    """Pipeline schedules, triggers, and the runs they started."""

    @abstractmethod
    def create_schedule(
        self, schedule: PipelineSchedule, *, replace: bool = False
    ) -> PipelineSchedule:
        """Return the saved schedule, its next run time set; ``AlreadyExists`` if the name is
        taken (unless ``replace``: then the definition is replaced, its history kept)."""

    @abstractmethod
    def get_schedule(self, name: str) -> PipelineSchedule:
        """Return one schedule; ``NotFound`` if there is none by that name."""

    @abstractmethod
    def list_schedules(self) -> list[PipelineSchedule]:
        """Return every schedule, by name."""

    @abstractmethod
    def set_schedule_enabled(self, name: str, enabled: bool) -> PipelineSchedule:
        """Return the schedule paused (False) or resumed (True); resuming plans its next run
        from now, so a pause is not caught up."""

    @abstractmethod
    def delete_schedule(self, name: str) -> None:
        """Delete a schedule (a run it started goes on); ``NotFound`` if there is none."""

    @abstractmethod
    def create_trigger(self, trigger: PipelineTrigger) -> PipelineTrigger:
        """Return the saved trigger; a webhook's comes with its token, shown only this once.
        ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_trigger(self, name: str) -> PipelineTrigger:
        """Return one trigger; ``NotFound`` if there is none by that name."""

    @abstractmethod
    def list_triggers(self, *, kind: str | None = None) -> list[PipelineTrigger]:
        """Return every trigger (of one kind if given), by name."""

    @abstractmethod
    def delete_trigger(self, name: str) -> None:
        """Delete a trigger; ``NotFound`` if there is none by that name."""

    @abstractmethod
    def list_dispatches(
        self, *, source: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[Dispatch]:
        """Return the runs schedules and triggers started, newest first."""
