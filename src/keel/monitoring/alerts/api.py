"""The alerts SDK: ``keel.add_alert_rule``, ``keel.load_alert_rules``, ``keel.list_alerts``,
``keel.acknowledge_alert``, ….

Each function works on the alerts store of the current tracking URI (the metadata
database, or a Keel server). ``keel server`` evaluates the rules (``keel.monitoring.jobs``).

    keel.add_alert_rule(
        "churn-drift", deployment="churn-prod", metric="drift_share", op=">",
        threshold=0.3, window="1h", for_=2, severity="critical",
        notifiers=[{"type": "slack", "url_env": "SLACK_WEBHOOK_URL"}], actions=["rollback"],
    )
    keel.load_alert_rules("alerts.yaml")
    for alert in keel.list_alerts(state="firing"):
        keel.acknowledge_alert(alert.alert_id)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keel.monitoring.alerts.entities import Alert, AlertEvent, AlertState
from keel.monitoring.alerts.rules import AlertRule, parse_rule
from keel.monitoring.alerts.rules_file import read_rules_file
from keel.monitoring.alerts.store import DEFAULT_LIMIT, AlertStore

__all__ = [
    "acknowledge_alert",
    "add_alert_rule",
    "delete_alert_rule",
    "get_alert",
    "get_alert_events",
    "get_alert_rule",
    "list_alert_rules",
    "list_alerts",
    "load_alert_rules",
]


def _store() -> AlertStore:
    from keel.stores import current_stores

    return current_stores().alerts  # type: ignore[no-any-return]


def add_alert_rule(
    name: str,
    *,
    deployment: str,
    metric: str,
    op: str,
    threshold: float,
    window: str | float = "1h",
    for_: int = 1,
    severity: str = "warning",
    cooldown: str | float = "10m",
    repeat: str | float = "4h",
    notifiers: Sequence[str | Mapping[str, Any]] | None = None,
    actions: Sequence[str | Mapping[str, Any]] | None = None,
    enabled: bool = True,
    description: str | None = None,
    replace: bool = False,
) -> AlertRule:
    """Return the new rule: alert when ``metric op threshold`` holds over ``window`` for
    ``for_`` consecutive evaluations (fields as in ``keel.monitoring.alerts.rules``);
    ``AlreadyExists`` if the name is taken, unless ``replace``."""
    rule = parse_rule(
        {
            "name": name,
            "deployment": deployment,
            "metric": metric,
            "op": op,
            "threshold": threshold,
            "window": window,
            "for": for_,
            "severity": severity,
            "cooldown": cooldown,
            "repeat": repeat,
            "notifiers": ["log"] if notifiers is None else notifiers,
            "actions": actions,
            "enabled": enabled,
            "description": description,
        }
    )
    return _store().add_rules([rule], replace=replace)[0]


def load_alert_rules(path: str | Path) -> list[AlertRule]:
    """Return the rules of a YAML file as stored, replacing rules of the same name; every
    rule is checked before any is stored (format in ``keel.monitoring.alerts.rules``)."""
    return _store().add_rules(read_rules_file(path), replace=True)


def get_alert_rule(name: str) -> AlertRule:
    """Return the rule ``name``; ``NotFound`` otherwise."""
    return _store().get_rule(name)


def list_alert_rules(deployment: str | None = None) -> list[AlertRule]:
    """Return every rule (on ``deployment`` if given), by name."""
    return _store().list_rules(deployment=deployment)


def delete_alert_rule(name: str) -> None:
    """Delete the rule ``name``; its open alert resolves (alerts and events are kept)."""
    _store().delete_rule(name)


def list_alerts(
    state: AlertState | str | None = None, rule: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[Alert]:
    """Return the latest ``limit`` alerts (``state`` pending, firing or resolved; of one
    ``rule``), newest first."""
    return _store().list_alerts(state=state, rule=rule, limit=limit)


def get_alert(alert_id: str) -> Alert:
    """Return one alert by id; ``NotFound`` otherwise."""
    return _store().get_alert(alert_id)


def get_alert_events(
    alert_id: str | None = None, rule: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[AlertEvent]:
    """Return the latest ``limit`` events (of one alert or rule), oldest first: state
    changes, notifications, actions and their outcomes, acknowledgements, errors."""
    return _store().alert_events(alert_id=alert_id, rule=rule, limit=limit)


def acknowledge_alert(alert_id: str) -> Alert:
    """Return the alert acknowledged by the current user: it stops re-notifying.
    ``Conflict`` if it is resolved or acknowledged already."""
    return _store().acknowledge(alert_id)
