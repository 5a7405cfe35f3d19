"""Pipeline schedules and triggers over HTTP: each ``ScheduleStore`` method is one call.

Definitions are checked here as the SQL store checks them, so a bad one is the same
``InvalidInput`` on every backend, before any request; server errors come back as the
same ``KeelError`` subclasses.
"""

from __future__ import annotations

from typing import Any

from keel.client.http import KeelHttp
from keel.pipelines.schedule_store import (
    ScheduleStore,
    check_limit,
    recheck_schedule,
    recheck_trigger,
)
from keel.pipelines.schedules import (
    TRIGGER_KINDS,
    WEBHOOK_HEADER,
    Dispatch,
    PipelineSchedule,
    PipelineTrigger,
    check_name,
)

__all__ = ["RestScheduleStore", "fire_webhook"]

_BASE = "/api/v1/pipelines"


def _acting() -> dict[str, str]:
    # Who makes the change, for the server's audit log when its auth is off.
    from keel.governance.identity import current_actor

    return {"Keel-Actor": current_actor()}


def _schedule_path(name: str, *rest: str) -> str:
    # Checked here too: a valid name needs no percent-encoding and cannot climb the path.
    return "/".join((_BASE, "schedules", check_name(name), *rest))


def _trigger_path(name: str, *rest: str) -> str:
    return "/".join((_BASE, "triggers", check_name(name, "trigger"), *rest))


class RestScheduleStore(ScheduleStore):
    """The schedules and triggers of a Keel server, through its REST API."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def _schedule(self, method: str, path: str, json: Any = None) -> PipelineSchedule:
        headers = None if method == "GET" else _acting()
        data = self.http.request(method, path, json=json, headers=headers)
        return PipelineSchedule.from_dict(data)

    def create_schedule(
        self, schedule: PipelineSchedule, *, replace: bool = False
    ) -> PipelineSchedule:
        s = recheck_schedule(schedule)
        body = {
            k: v
            for k, v in s.to_dict().items()
            if k
            in (
                "name",
                "pipeline",
                "cron",
                "timezone",
                "params",
                "missed",
                "max_catchup",
                "executor",
                "workdir",
                "enabled",
            )
        }
        body["replace"] = replace
        return self._schedule("POST", f"{_BASE}/schedules", body)

    def get_schedule(self, name: str) -> PipelineSchedule:
        return self._schedule("GET", _schedule_path(name))

    def list_schedules(self) -> list[PipelineSchedule]:
        data = self.http.request("GET", f"{_BASE}/schedules")
        return [PipelineSchedule.from_dict(d) for d in data["schedules"]]

    def set_schedule_enabled(self, name: str, enabled: bool) -> PipelineSchedule:
        verb = "resume" if enabled is True else "pause" if enabled is False else None
        if verb is None:
            from keel.errors import InvalidInput

            raise InvalidInput("enabled must be True or False")
        return self._schedule("POST", _schedule_path(name, verb))

    def delete_schedule(self, name: str) -> None:
        self.http.request("DELETE", _schedule_path(name), headers=_acting())

    def create_trigger(self, trigger: PipelineTrigger) -> PipelineTrigger:
        t = recheck_trigger(trigger)
        body = {
            "name": t.name,
            "pipeline": t.pipeline,
            "kind": t.kind,
            "subject": t.subject or None,
            "params": t.params,
            "executor": t.executor,
            "workdir": t.workdir,
            "enabled": t.enabled,
        }
        data = self.http.request("POST", f"{_BASE}/triggers", json=body, headers=_acting())
        return PipelineTrigger.from_dict(data)

    def get_trigger(self, name: str) -> PipelineTrigger:
        return PipelineTrigger.from_dict(self.http.request("GET", _trigger_path(name)))

    def list_triggers(self, *, kind: str | None = None) -> list[PipelineTrigger]:
        if kind is not None and kind not in TRIGGER_KINDS:
            from keel.errors import InvalidInput

            raise InvalidInput(
                f"trigger kind {kind!r:.100} must be one of {', '.join(TRIGGER_KINDS)}"
            )
        params = None if kind is None else {"kind": kind}
        data = self.http.request("GET", f"{_BASE}/triggers", params=params)
        return [PipelineTrigger.from_dict(d) for d in data["triggers"]]

    def delete_trigger(self, name: str) -> None:
        self.http.request("DELETE", _trigger_path(name), headers=_acting())

    def list_dispatches(
        self, *, source: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[Dispatch]:
        params: dict[str, Any] = {"limit": check_limit(limit)}
        if source is not None:
            params["source"] = source
        if name is not None:
            params["name"] = check_name(name, "schedule or trigger")
        data = self.http.request("GET", f"{_BASE}/dispatches", params=params)
        return [Dispatch(**d) for d in data["dispatches"]]


def fire_webhook(
    http: KeelHttp, name: str, token: str, payload: dict[str, Any] | None = None
) -> list[str]:
    """Call webhook trigger ``name`` on a server with its ``token``; return the dispatch ids."""
    data = http.request(
        "POST",
        _trigger_path(name, "fire"),
        json={"payload": payload or {}},
        headers={WEBHOOK_HEADER: token},
    )
    return list(data["dispatches"])
