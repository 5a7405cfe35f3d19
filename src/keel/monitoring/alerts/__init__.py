"""Alerts: rules over monitored figures, evaluated by ``keel server``; states pending,
firing and resolved; notifiers (webhook, Slack, e-mail, log) and actions (rollback, abort
or pause a canary, webhook, pipeline trigger).

- ``rules``: :class:`AlertRule`, its fields and the YAML file format;
- ``engine``: the state machine (deduplication, cooldown, repeat, acknowledgement);
- ``store`` / ``sql_store`` / ``keel.client.alerts``: one interface, SQL and REST;
- ``notifiers``, ``actions``: what a firing alert does; ``register_alert_action`` adds one;
- ``runner``: one evaluation pass, in which one failing rule never stops the others;
- ``api``: the SDK (``keel.add_alert_rule``, ``keel.list_alerts``, …).
"""

from __future__ import annotations

from keel.monitoring.alerts.actions import ActionContext, register_alert_action
from keel.monitoring.alerts.api import (
    acknowledge_alert,
    add_alert_rule,
    delete_alert_rule,
    get_alert,
    get_alert_events,
    get_alert_rule,
    list_alert_rules,
    list_alerts,
    load_alert_rules,
)
from keel.monitoring.alerts.entities import Alert, AlertEvent, AlertState
from keel.monitoring.alerts.rules import AlertRule

__all__ = [
    "ActionContext",
    "Alert",
    "AlertEvent",
    "AlertRule",
    "AlertState",
    "acknowledge_alert",
    "add_alert_rule",
    "delete_alert_rule",
    "get_alert",
    "get_alert_events",
    "get_alert_rule",
    "list_alert_rules",
    "list_alerts",
    "load_alert_rules",
    "register_alert_action",
]
