"""Request and response bodies of the pipeline schedules and triggers API
(/api/v1/pipelines/…). Bounds mirror the tables and ``keel.pipelines.schedules``; the
store checks the meaning (cron, time zone, reference) and names what is wrong."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from keel.server.schemas.json_values import StorableJson

__all__ = [
    "DispatchListOut",
    "DispatchOut",
    "FireIn",
    "FiredOut",
    "ScheduleIn",
    "ScheduleListOut",
    "ScheduleOut",
    "TriggerIn",
    "TriggerListOut",
    "TriggerOut",
]

Name = Annotated[StrictStr, Field(min_length=1, max_length=128)]
Ref = Annotated[StrictStr, Field(min_length=3, max_length=1000, description="flows.py:train")]
Params = Annotated[
    dict[Annotated[str, Field(max_length=100)], Annotated[str, Field(max_length=10_000)]],
    Field(max_length=100),
]
Workdir = Annotated[StrictStr | None, Field(max_length=4096)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleIn(_Body):
    name: Name
    pipeline: Ref
    cron: Annotated[StrictStr, Field(min_length=9, max_length=200, description="0 3 * * *")]
    timezone: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "UTC"
    params: Params = {}
    missed: Annotated[StrictStr, Field(max_length=16)] = "latest"
    max_catchup: StrictInt = 10
    executor: Annotated[StrictStr, Field(max_length=16)] = "local"
    workdir: Workdir = None
    enabled: StrictBool = True
    replace: StrictBool = False


class ScheduleOut(BaseModel):
    name: str
    pipeline: str
    cron: str
    timezone: str
    params: dict[str, str]
    missed: str
    max_catchup: int
    executor: str
    workdir: str | None
    enabled: bool
    next_run_at: int | None
    last_run_at: int | None
    last_run_id: str | None
    last_status: str | None
    last_error: str | None
    created_at: int
    updated_at: int
    created_by: str


class ScheduleListOut(BaseModel):
    schedules: list[ScheduleOut]


class TriggerIn(_Body):
    name: Name
    pipeline: Ref
    kind: Annotated[StrictStr, Field(max_length=16, description="alert, model_version, …")]
    subject: Annotated[StrictStr | None, Field(max_length=256)] = None
    params: Params = {}
    executor: Annotated[StrictStr, Field(max_length=16)] = "local"
    workdir: Workdir = None
    enabled: StrictBool = True


class TriggerOut(BaseModel):
    name: str
    pipeline: str
    kind: str
    subject: str
    params: dict[str, str]
    executor: str
    workdir: str | None
    enabled: bool
    fired: int
    last_fired_at: int | None
    last_run_id: str | None
    last_status: str | None
    last_error: str | None
    created_at: int
    updated_at: int
    created_by: str
    token: str | None = Field(None, description="a webhook's token: in the create answer only")


class TriggerListOut(BaseModel):
    triggers: list[TriggerOut]


class FireIn(_Body):
    payload: Annotated[
        dict[Annotated[str, Field(max_length=100)], StorableJson], Field(max_length=100)
    ] = {}


class FiredOut(BaseModel):
    dispatches: list[str]


class DispatchOut(BaseModel):
    dispatch_id: str
    source: str
    name: str
    event_key: str
    status: str
    started_at: int
    due_at: int | None
    ended_at: int | None
    run_id: str | None
    error: str | None
    pid: int | None


class DispatchListOut(BaseModel):
    dispatches: list[DispatchOut]
