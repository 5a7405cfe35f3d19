"""Actions an alert runs when it fires: roll back, abort or pause a canary, call a webhook,
or trigger a pipeline (retraining).

Each action is a handler ``(ActionContext) -> dict`` returning what it did (recorded on the
alert and in the audit log); raising records the failure instead, and the alert's other
actions still run. The built-in ones:

- ``rollback``: ``rollback`` of the rule's deployment (or the action's ``deployment``) to
  its previous version (or ``to``);
- ``abort_canary`` / ``pause_canary``: abort, or hold at its step, the deployment's running
  canary (``Conflict``, recorded, if none is running);
- ``webhook``: POST the alert's JSON (as the webhook notifier) to ``url``, which the
  outbound policy checks when the rule is stored and before each call
  (``keel.governance.outbound``: public addresses only unless allow-listed);
- ``trigger``: ``keel.pipelines.triggers.fire_trigger(stores, "alert", rule, payload)`` —
  starts every pipeline trigger on this rule (or on any alert); the payload carries the
  alert and the action's ``payload``, with the alert id as ``event_key`` so a repeat
  starts nothing.

``register_alert_action(name, handler)`` adds one (in the process that evaluates: ``keel
server``); a rule may name it once registered. A handler that calls a URL from its
configuration should pass it through ``keel.governance.outbound.resolve_outbound`` and
``stream_outbound`` as the webhook does, so the same policy holds.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keel.errors import InvalidInput, KeelError
from keel.monitoring.alerts.entities import Alert
from keel.monitoring.alerts.rules import AlertRule

__all__ = ["ActionContext", "action_names", "register_alert_action", "run_action"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True)
class ActionContext:
    """What an action handler gets: the stores, the rule, its firing alert, the action's
    configuration (a mapping with its ``type``) and the time (epoch ms)."""

    stores: Any
    rule: AlertRule
    alert: Alert
    config: Mapping[str, Any]
    now: int

    @property
    def deployment(self) -> str:
        """The deployment the action works on: its own ``deployment``, else the rule's."""
        return str(self.config.get("deployment") or self.rule.deployment)


Handler = Callable[[ActionContext], Mapping[str, Any] | None]


def _rollback(ctx: ActionContext) -> dict[str, Any]:
    dep = ctx.stores.deployments.rollback(ctx.deployment, to=ctx.config.get("to"))
    return {"deployment": dep.name, "revision": dep.revision, "stable": dep.stable.key}


def _canary(ctx: ActionContext, doing: str) -> Any:
    dep = ctx.stores.deployments.get_deployment(ctx.deployment)
    rollout = dep.rollout
    if rollout is None or not rollout.running or rollout.strategy.value != "canary":
        from keel.errors import Conflict

        raise Conflict(f"deployment {dep.name!r} has no canary running to {doing}")
    return dep


def _abort_canary(ctx: ActionContext) -> dict[str, Any]:
    _canary(ctx, "abort")
    dep = ctx.stores.deployments.abort(ctx.deployment)
    return {"deployment": dep.name, "revision": dep.revision, "stable": dep.stable.key}


def _pause_canary(ctx: ActionContext) -> dict[str, Any]:
    _canary(ctx, "pause")
    pause = getattr(ctx.stores.deployments, "pause", None)
    if not callable(pause):
        raise KeelError("pausing a canary needs the metadata database (run by keel server)")
    dep = pause(ctx.deployment)
    return {"deployment": dep.name, "revision": dep.revision, "step": dep.rollout.step + 1}


def _webhook(ctx: ActionContext) -> dict[str, Any]:
    from keel.monitoring.alerts.notifiers import Notice, send_webhook
    from keel.monitoring.alerts.specs import mask

    status = send_webhook(ctx.config, Notice("firing", ctx.rule, ctx.alert).body())
    return {"url": mask(ctx.config).get("url"), "status": status}


def _trigger(ctx: ActionContext) -> dict[str, Any]:
    try:
        from keel.pipelines.triggers import fire_trigger
    except ImportError:
        raise KeelError(
            "the trigger action needs keel.pipelines.triggers, which this Keel does not have"
        ) from None
    payload = {
        **dict(ctx.config.get("payload") or {}),
        "alert_id": ctx.alert.alert_id,
        "rule": ctx.rule.name,
        "deployment": ctx.rule.deployment,
        "metric": ctx.rule.metric,
        "value": ctx.alert.value,
        "severity": ctx.rule.severity,
        "event_key": f"alert:{ctx.alert.alert_id}",
    }
    started = fire_trigger(ctx.stores, "alert", ctx.rule.name, payload)
    return {"started": list(started)}


_BUILTIN: dict[str, Handler] = {
    "rollback": _rollback,
    "abort_canary": _abort_canary,
    "pause_canary": _pause_canary,
    "webhook": _webhook,
    "trigger": _trigger,
}
_lock = threading.Lock()
_registered: dict[str, Handler] = {}


def register_alert_action(name: str, handler: Handler) -> None:
    """Make ``name`` an action rules may run: ``handler(ActionContext)`` returns what it
    did (a JSON-ready mapping) or raises. Registering a name again replaces its handler;
    built-in names cannot be replaced."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"an alert action name is lowercase letters, digits and _ (64), not {name!r:.80}"
        )
    if name in _BUILTIN:
        raise InvalidInput(f"{name!r} is a built-in alert action and cannot be replaced")
    if not callable(handler):
        raise InvalidInput(f"the handler of alert action {name!r} must be callable")
    with _lock:
        _registered[name] = handler


def unregister_alert_action(name: str) -> None:
    """Forget a registered action (rules naming it then fail, recorded on their alerts)."""
    with _lock:
        _registered.pop(name, None)


def action_names() -> list[str]:
    """Return every action a rule may name: the built-in and the registered ones."""
    with _lock:
        return sorted({*_BUILTIN, *_registered})


def run_action(ctx: ActionContext) -> dict[str, Any]:
    """Run one action and return what it reported; raises what the handler raised."""
    kind = str(ctx.config.get("type"))
    with _lock:
        handler = _BUILTIN.get(kind) or _registered.get(kind)
    if handler is None:
        raise KeelError(f"no alert action {kind!r} is registered in this process")
    result = handler(ctx)
    if result is None:
        return {}
    if not isinstance(result, Mapping):
        raise KeelError(f"alert action {kind!r} returned {type(result).__name__}, not a mapping")
    return dict(result)
