"""The alerts store over HTTP: each ``AlertStore`` method is one call to a Keel server.

Rules, alerts and events are rebuilt exactly as the SQL store returns them; server
errors come back as the same ``KeelError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from keel.client.http import KeelHttp
from keel.errors import InvalidInput
from keel.monitoring.alerts.entities import (
    Alert,
    AlertEvent,
    AlertState,
    check_alert_id,
    check_state,
)
from keel.monitoring.alerts.rules import AlertRule, check_rule_name
from keel.monitoring.alerts.store import DEFAULT_LIMIT, AlertStore, check_limit

__all__ = ["RestAlertStore"]

_BASE = "/api/v1/alerts"


def _acting() -> dict[str, str]:
    # Who makes the change, for the server's audit log when its auth is off (with auth on,
    # the server takes the token's user and ignores this).
    from keel.governance.identity import current_actor

    return {"Keel-Actor": current_actor()}


class RestAlertStore(AlertStore):
    """The alert rules and alerts of a Keel server, through its REST API."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def add_rules(self, rules: Sequence[AlertRule], *, replace: bool = False) -> list[AlertRule]:
        if isinstance(rules, (str, bytes, Mapping)) or not all(
            isinstance(r, AlertRule) for r in rules
        ):
            raise InvalidInput("add_rules takes a list of AlertRule values")
        body = {"rules": [_rule_in(r) for r in rules], "replace": bool(replace)}
        data = self.http.request("POST", f"{_BASE}/rules", json=body, headers=_acting())
        return [AlertRule.from_dict(r) for r in data["rules"]]

    def get_rule(self, name: str) -> AlertRule:
        data = self.http.request("GET", f"{_BASE}/rules/{check_rule_name(name)}")
        return AlertRule.from_dict(data)

    def list_rules(self, *, deployment: str | None = None) -> list[AlertRule]:
        params = None
        if deployment is not None:
            from keel.deploy.entities import check_deployment_name

            params = {"deployment": check_deployment_name(deployment)}
        data = self.http.request("GET", f"{_BASE}/rules", params=params)
        return [AlertRule.from_dict(r) for r in data["rules"]]

    def delete_rule(self, name: str) -> None:
        path = f"{_BASE}/rules/{check_rule_name(name)}"
        self.http.request("DELETE", path, headers=_acting())

    def list_alerts(
        self,
        *,
        state: AlertState | str | None = None,
        rule: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Alert]:
        params: dict[str, object] = {"limit": check_limit(limit)}
        if state is not None:
            params["state"] = check_state(state).value
        if rule is not None:
            params["rule"] = check_rule_name(rule)
        data = self.http.request("GET", _BASE, params=params)
        return [Alert.from_dict(a) for a in data["alerts"]]

    def get_alert(self, alert_id: str) -> Alert:
        return Alert.from_dict(self.http.request("GET", f"{_BASE}/{check_alert_id(alert_id)}"))

    def alert_events(
        self, *, alert_id: str | None = None, rule: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[AlertEvent]:
        params: dict[str, object] = {"limit": check_limit(limit)}
        if alert_id is not None:
            params["alert_id"] = check_alert_id(alert_id)
        if rule is not None:
            params["rule"] = check_rule_name(rule)
        data = self.http.request("GET", f"{_BASE}/events", params=params)
        return [AlertEvent.from_dict(e) for e in data["events"]]

    def acknowledge(self, alert_id: str) -> Alert:
        path = f"{_BASE}/{check_alert_id(alert_id)}/ack"
        return Alert.from_dict(self.http.request("POST", path, headers=_acting()))


def _rule_in(rule: AlertRule) -> dict[str, object]:
    data = rule.to_dict()
    for key in ("created_at", "updated_at", "created_by"):
        data.pop(key)
    return data
