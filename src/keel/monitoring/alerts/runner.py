"""One evaluation pass: every enabled rule's figure computed, its step decided and
persisted, its notifiers told and its actions run.

A figure source is a callable ``(stores, deployment, *, window_s, now_ms) -> {name:
value}`` (``keel.monitoring.figures.compute_figures`` unless one is given); figures are
computed once per (deployment, window) per pass. Nothing one rule does can stop the
others: a figure source that raises, a notifier that is down, an action that fails are
each recorded as an event on that rule's alert (or on the rule, when it has no alert
yet) and in the audit log, and the pass goes on. Automatic changes act as
``keel-scheduler``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.governance.identity import acting_as
from keel.monitoring.alerts.actions import ActionContext, run_action
from keel.monitoring.alerts.engine import Step, decide
from keel.monitoring.alerts.entities import Alert
from keel.monitoring.alerts.notifiers import Notice, notify
from keel.monitoring.alerts.rules import AlertRule
from keel.monitoring.alerts.sql_store import SqlAlertStore
from keel.store.clock import now_ms

__all__ = ["SCHEDULER_ACTOR", "FigureSource", "PassReport", "default_figure_source", "run_pass"]

SCHEDULER_ACTOR = "keel-scheduler"
FigureSource = Callable[..., Mapping[str, float]]
_log = logging.getLogger("keel.alerts")


def default_figure_source() -> FigureSource:
    """Return ``keel.monitoring.figures.compute_figures`` (imported on first use); where
    this Keel has no such module, a source whose every call fails (recorded per rule)."""
    try:
        from keel.monitoring.figures import compute_figures
    except ImportError as exc:
        reason = str(exc)

        def unavailable(*_: Any, **__: Any) -> Mapping[str, float]:
            from keel.errors import KeelError

            raise KeelError(f"monitored figures are unavailable: {reason}")

        return unavailable
    return compute_figures


@dataclass
class PassReport:
    """What one pass did: rules evaluated, their steps, and the errors recorded by rule."""

    evaluated: int = 0
    steps: dict[str, Step] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def error(self, rule: str, message: str) -> None:
        """Note an error met on ``rule``."""
        self.errors.setdefault(rule, []).append(message)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:500]}"


class _Pass:
    def __init__(self, stores: Any, store: SqlAlertStore, source: FigureSource, now: int) -> None:
        self.stores, self.store, self.source, self.now = stores, store, source, now
        self.report = PassReport()
        self._figures: dict[tuple[str, float], Mapping[str, float] | BaseException] = {}

    def figures(self, rule: AlertRule) -> Mapping[str, float]:
        key = (rule.deployment, rule.window_s)
        if key not in self._figures:
            try:
                got = self.source(
                    self.stores, rule.deployment, window_s=rule.window_s, now_ms=self.now
                )
                if not isinstance(got, Mapping):
                    raise TypeError(f"the figure source returned {type(got).__name__}")
                self._figures[key] = got
            except Exception as exc:  # noqa: BLE001 - recorded on each rule that needs it
                self._figures[key] = exc
        got = self._figures[key]
        if isinstance(got, BaseException):
            raise got
        return got

    def fail(self, rule: AlertRule, alert: Alert | None, where: str, exc: BaseException) -> None:
        message = f"{where}: {_describe(exc)}"
        self.report.error(rule.name, message)
        _log.warning("alert rule %s: %s", rule.name, message)
        try:
            alert_id = None if alert is None else alert.alert_id
            self.store.record(
                rule.name, alert_id, "error", {"where": where, "error": message}, error=message
            )
        except Exception:  # noqa: BLE001 - the database itself failing: logged, pass goes on
            _log.exception("alert rule %s: could not record an error", rule.name)

    def rule(self, rule: AlertRule, alert: Alert | None, last_resolved: int | None) -> None:
        try:
            value = self.figures(rule).get(rule.metric)
        except Exception as exc:  # noqa: BLE001 - a broken source fails this rule only
            self.fail(rule, alert, "figures", exc)
            return
        step = decide(rule, alert, value, self.now, last_resolved_at=last_resolved)
        self.report.steps[rule.name] = step
        if alert is None and step.transition == "none":
            return  # quiet and fine: nothing to write
        try:
            alert = self.store.apply(rule, step, self.now)
        except Exception as exc:  # noqa: BLE001
            self.fail(rule, alert, "apply", exc)
            return
        if alert is None or step.notify is None:
            return
        self.deliver(rule, alert, step)

    def deliver(self, rule: AlertRule, alert: Alert, step: Step) -> None:
        notice = Notice(str(step.notify), rule, alert)
        for i, spec in enumerate(rule.notifiers):
            where = f"notifier #{i + 1} ({spec.get('type')})"
            try:
                detail = notify(spec, notice)
                self.store.record(
                    rule.name, alert.alert_id, "notified", {"event": step.notify, **detail}
                )
            except Exception as exc:  # noqa: BLE001 - one notifier down: the others still go
                self.fail(rule, alert, where, exc)
        if step.notify in ("firing", "repeat"):
            self.store.mark_notified(alert.alert_id, self.now)
        if not step.act:
            return
        for i, spec in enumerate(rule.actions):
            kind = str(spec.get("type"))
            try:
                ctx = ActionContext(self.stores, rule, alert, spec, self.now)
                detail = run_action(ctx)
                self.store.record(
                    rule.name, alert.alert_id, "action", {"action": kind, "ok": True, **detail}
                )
            except Exception as exc:  # noqa: BLE001 - a failed action is recorded; the rest run
                message = _describe(exc)
                self.report.error(rule.name, f"action #{i + 1} ({kind}): {message}")
                try:
                    self.store.record(
                        rule.name,
                        alert.alert_id,
                        "action_failed",
                        {"action": kind, "ok": False, "error": message},
                        error=f"action {kind}: {message}",
                    )
                except Exception:  # noqa: BLE001
                    _log.exception("alert rule %s: could not record a failed action", rule.name)


def run_pass(
    stores: Any,
    *,
    figure_source: FigureSource | None = None,
    now: int | None = None,
    store: SqlAlertStore | None = None,
) -> PassReport:
    """Evaluate every enabled rule once; return what happened (errors are recorded, never
    raised, except when the rules themselves cannot be read)."""
    store = store or stores.alerts
    if not isinstance(store, SqlAlertStore):
        from keel.errors import Conflict

        raise Conflict("alert rules are evaluated next to the metadata database (keel server)")
    moment = now_ms() if now is None else now
    source = figure_source or default_figure_source()
    with acting_as(SCHEDULER_ACTOR):
        rules = [r for r in store.list_rules() if r.enabled]
        open_alerts = store.open_alerts()
        last_resolved = store.last_resolved()
        one = _Pass(stores, store, source, moment)
        for rule in rules:
            one.report.evaluated += 1
            try:
                one.rule(rule, open_alerts.get(rule.name), last_resolved.get(rule.name))
            except Exception as exc:  # noqa: BLE001 - belt and braces: never stop the pass
                one.fail(rule, open_alerts.get(rule.name), "evaluation", exc)
    return one.report
