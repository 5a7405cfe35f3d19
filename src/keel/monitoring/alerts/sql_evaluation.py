"""The evaluator's side of the SQL alerts store: open alerts, steps persisted, events.

``SqlAlertStore`` inherits it; only ``keel server``'s evaluation pass (``runner``) calls
these, next to the database. Each write is one transaction ending with its audit entry.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, and_, func, select
from sqlalchemy import exc as sa_exc

from keel.errors import NotFound
from keel.governance.chain import Entry, append
from keel.monitoring.alerts.engine import Step
from keel.monitoring.alerts.entities import Alert, AlertState
from keel.monitoring.alerts.rules import AlertRule
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_alerts import alert_events, alerts

__all__ = ["MAX_DETAIL", "SqlAlertEvaluation", "alert_from", "dumps"]

MAX_DETAIL = 4_000  # characters of an event's detail kept


def dumps(value: Any) -> str:
    """Return ``value`` as compact JSON (NaN refused; unknown objects as their text)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"), default=str)


def alert_from(row: Any) -> Alert:
    """Return the alert an ``alerts`` row holds."""
    return Alert(
        alert_id=row.alert_id,
        rule=row.rule,
        deployment=row.deployment,
        metric=row.metric,
        severity=row.severity,
        state=AlertState(row.state),
        value=row.value,
        breaches=row.breaches,
        started_at=row.started_at,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        evaluated_at=row.evaluated_at,
        notified_at=row.notified_at,
        notifications=row.notifications,
        acknowledged_by=row.acknowledged_by,
        acknowledged_at=row.acknowledged_at,
        last_error=row.last_error,
    )


def _finite(value: float | None) -> float | None:
    # ±inf is a valid figure but not valid JSON nor portable; keep it out of the row
    return value if value is None or abs(value) != float("inf") else None


class SqlAlertEvaluation:
    """Open alerts and their steps, events and deliveries on a SQL metadata database."""

    db: Database

    @staticmethod
    def _alert_row(conn: Connection, alert_id: str, *, lock: bool = False) -> Any:
        query = select(alerts).where(alerts.c.alert_id == alert_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"no alert {alert_id!r} (keel alerts list)")
        return row

    @staticmethod
    def _open_query(rule: str | None = None) -> Any:
        query = select(alerts).where(alerts.c.state != AlertState.RESOLVED.value)
        return query if rule is None else query.where(alerts.c.rule == rule)

    def open_alerts(self) -> dict[str, Alert]:
        """Return each rule's open (pending or firing) alert, by rule name."""
        with self.db.read() as conn:
            return {row.rule: alert_from(row) for row in conn.execute(self._open_query())}

    def last_resolved(self) -> dict[str, int]:
        """Return when each rule's latest delivered (notified) alert resolved, by rule."""
        a = alerts
        query = (
            select(a.c.rule, func.max(a.c.resolved_at))
            .where(and_(a.c.state == AlertState.RESOLVED.value, a.c.notified_at.is_not(None)))
            .group_by(a.c.rule)
        )
        with self.db.read() as conn:
            return {rule: int(at) for rule, at in conn.execute(query) if at is not None}

    @staticmethod
    def _set(conn: Connection, alert_id: str, **values: Any) -> None:
        conn.execute(alerts.update().where(alerts.c.alert_id == alert_id).values(**values))

    @staticmethod
    def _event(
        conn: Connection,
        rule: str,
        alert_id: str | None,
        at: int,
        kind: str,
        value: float | None,
        detail: Mapping[str, Any],
    ) -> None:
        text = dumps(dict(detail))
        if len(text) > MAX_DETAIL:
            text = dumps({"truncated": text[:MAX_DETAIL]})
        conn.execute(
            alert_events.insert().values(
                rule=rule, alert_id=alert_id, at=at, kind=kind, value=_finite(value), detail=text
            )
        )

    def apply(self, rule: AlertRule, step: Step, now: int) -> Alert | None:
        """Return the rule's alert after persisting ``step`` (None if it has none).

        A state change writes an event and an audit entry; a step that only counts or
        waits updates the row.
        """
        try:
            return self._apply(rule, step, now)
        except sa_exc.IntegrityError:
            # another evaluator opened this rule's alert at the same moment (a lease
            # hand-over): at most one is open (uq_alerts_rule_open), so take that one
            return self.open_alerts().get(rule.name)

    def _apply(self, rule: AlertRule, step: Step, now: int) -> Alert | None:
        value = _finite(step.value)
        with self.db.write() as conn:
            row = conn.execute(self._open_query(rule.name).with_for_update()).first()
            if step.transition in ("open-pending", "open-firing"):
                if row is not None:  # another evaluator got here first (lease hand-over)
                    return alert_from(row)
                alert_id = uuid.uuid4().hex
                firing = step.transition == "open-firing"
                conn.execute(
                    alerts.insert().values(
                        alert_id=alert_id,
                        rule=rule.name,
                        deployment=rule.deployment,
                        metric=rule.metric,
                        severity=rule.severity,
                        state="firing" if firing else "pending",
                        value=value,
                        breaches=step.breaches,
                        started_at=now,
                        fired_at=now if firing else None,
                        evaluated_at=now,
                        notifications=0,
                    )
                )
                self._changed(conn, rule, alert_id, now, "firing" if firing else "pending", step)
                return alert_from(self._alert_row(conn, alert_id))
            if row is None:
                return None
            alert_id = row.alert_id
            values: dict[str, Any] = {"evaluated_at": now, "breaches": step.breaches}
            if value is not None:
                values["value"] = value
            if step.transition == "fire":
                values.update(state="firing", fired_at=now)
            elif step.transition == "resolve":
                values.update(state="resolved", resolved_at=now)
            self._set(conn, alert_id, **values)
            if step.transition in ("fire", "resolve"):
                kind = "firing" if step.transition == "fire" else "resolved"
                self._changed(conn, rule, alert_id, now, kind, step)
            elif step.held is not None and row.notified_at is None:
                # say once (not every tick) why a firing alert has not notified yet
                e = alert_events
                last = conn.execute(
                    select(e.c.kind)
                    .where(e.c.alert_id == alert_id)
                    .order_by(e.c.id.desc())
                    .limit(1)
                ).first()
                if last is None or last.kind != "held":
                    self._event(conn, rule.name, alert_id, now, "held", value, {"why": step.held})
            return alert_from(self._alert_row(conn, alert_id))

    def _changed(
        self, conn: Connection, rule: AlertRule, alert_id: str, now: int, kind: str, step: Step
    ) -> None:
        detail = {"condition": rule.condition(), "breaches": step.breaches}
        if step.held:
            detail["held"] = step.held
        self._event(conn, rule.name, alert_id, now, kind, step.value, detail)
        audited = {"rule": rule.name, "deployment": rule.deployment, "value": step.value, **detail}
        append(conn, [Entry(f"alert.{kind}", "alert", alert_id, audited)])

    def mark_notified(self, alert_id: str, at: int | None = None) -> None:
        """Record that ``alert_id`` delivered at ``at`` (default now; its notifiers were
        called, whatever they answered): it delivers again only when its repeat is due."""
        when = now_ms() if at is None else at
        with self.db.write() as conn:
            self._set(conn, alert_id, notified_at=when, notifications=alerts.c.notifications + 1)

    def record(
        self,
        rule: str,
        alert_id: str | None,
        kind: str,
        detail: Mapping[str, Any],
        *,
        value: float | None = None,
        error: str | None = None,
    ) -> bool:
        """Record an event (a notification, an action, an error) on an alert or rule, with
        its audit entry; return False when it repeats the rule's previous error event
        (a broken rule reports once, not every tick).

        ``error`` becomes the alert's ``last_error``.
        """
        now = now_ms()
        with self.db.write() as conn:
            if kind == "error":
                e = alert_events
                last = conn.execute(
                    select(e.c.kind, e.c.detail)
                    .where(e.c.rule == rule)
                    .order_by(e.c.id.desc())
                    .limit(1)
                ).first()
                if (
                    last is not None
                    and last.kind == "error"
                    and json.loads(last.detail) == json.loads(dumps(dict(detail)))
                ):
                    return False
            self._event(conn, rule, alert_id, now, kind, value, detail)
            if alert_id is not None and error is not None:
                self._set(conn, alert_id, last_error=error[:MAX_DETAIL])
            obj = ("alert", alert_id) if alert_id is not None else ("alert_rule", rule)
            append(conn, [Entry(f"alert.{kind}", obj[0], obj[1], {"rule": rule, **detail})])
        return True
