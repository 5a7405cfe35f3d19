"""What the alerts store returns: alerts (one episode of a rule) and their events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from keel.errors import InvalidInput

__all__ = ["Alert", "AlertEvent", "AlertState", "check_alert_id", "check_state"]

_ID = re.compile(r"[0-9a-f]{32}")


class AlertState(StrEnum):
    """Where an alert stands: breaching but not for long enough, firing, or over."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def check_state(state: object) -> AlertState:
    """Return the alert state ``state`` names; ``InvalidInput`` otherwise."""
    try:
        return AlertState(state)
    except ValueError:
        names = ", ".join(s.value for s in AlertState)
        raise InvalidInput(f"alert state {state!r:.40} is not one of {names}") from None


def check_alert_id(alert_id: object) -> str:
    """Return a valid alert id (32 lowercase hex characters); ``InvalidInput`` otherwise."""
    if not isinstance(alert_id, str) or not _ID.fullmatch(alert_id):
        raise InvalidInput(f"alert id {alert_id!r:.80} is not 32 hex characters (keel alerts list)")
    return alert_id


@dataclass(frozen=True)
class Alert:
    """One episode of a rule: from its first breach to its resolve.

    ``value`` is the figure at the last evaluation that had one; ``breaches`` counts the
    consecutive breaching evaluations; ``notified_at`` is when it last notified (None: not
    yet, e.g. inside the cooldown of the episode before); ``last_error`` is the last
    failure met while evaluating, notifying or acting on it. Times are epoch ms.
    """

    alert_id: str
    rule: str
    deployment: str
    metric: str
    severity: str
    state: AlertState
    value: float | None
    breaches: int
    started_at: int
    fired_at: int | None = None
    resolved_at: int | None = None
    evaluated_at: int = 0
    notified_at: int | None = None
    notifications: int = 0
    acknowledged_by: str | None = None
    acknowledged_at: int | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the alert as JSON-ready data."""
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Return the alert ``to_dict`` wrote."""
        values = {k: data.get(k) for k in cls.__dataclass_fields__}
        values["state"] = AlertState(data["state"])
        values["value"] = None if data.get("value") is None else float(data["value"])
        return cls(**values)


@dataclass(frozen=True)
class AlertEvent:
    """One thing that happened to an alert or rule: a state change, a notification, an
    action (and its outcome), an acknowledgement, or an error."""

    id: int
    rule: str
    alert_id: str | None
    at: int
    kind: str
    value: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the event as JSON-ready data."""
        data = asdict(self)
        data["detail"] = dict(self.detail)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertEvent:
        """Return the event ``to_dict`` wrote."""
        return cls(
            id=int(data["id"]),
            rule=str(data["rule"]),
            alert_id=data.get("alert_id"),
            at=int(data["at"]),
            kind=str(data["kind"]),
            value=None if data.get("value") is None else float(data["value"]),
            detail=dict(data.get("detail") or {}),
        )
