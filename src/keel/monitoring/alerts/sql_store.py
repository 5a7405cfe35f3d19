"""The alerts store on SQLite or PostgreSQL (one implementation, SQLAlchemy Core).

Each change is one write transaction ending with its audit entry. The evaluator's side
(``open_alerts``, ``last_resolved``, ``apply``, ``record``) is here only: it runs in
``keel server``, next to the database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, select
from sqlalchemy import exc as sa_exc

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.governance.chain import Entry, append
from keel.governance.identity import current_actor
from keel.monitoring.alerts.engine import Step
from keel.monitoring.alerts.entities import (
    Alert,
    AlertEvent,
    AlertState,
    check_alert_id,
    check_state,
)
from keel.monitoring.alerts.rules import AlertRule, check_rule_name
from keel.monitoring.alerts.store import DEFAULT_LIMIT, AlertStore, check_limit
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_alerts import alert_events, alert_rules, alerts

__all__ = ["SqlAlertStore"]

MAX_DETAIL = 4_000  # characters of an event's detail kept


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"), default=str)


def _rule_from(row: Any) -> AlertRule:
    return AlertRule(
        name=row.name,
        deployment=row.deployment,
        metric=row.metric,
        op=row.op,
        threshold=row.threshold,
        window_s=row.window_s,
        for_=row.for_count,
        severity=row.severity,
        cooldown_s=row.cooldown_s,
        repeat_s=row.repeat_s,
        notifiers=tuple(json.loads(row.notifiers)),
        actions=tuple(json.loads(row.actions)),
        enabled=bool(row.enabled),
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def _alert_from(row: Any) -> Alert:
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


def _event_from(row: Any) -> AlertEvent:
    return AlertEvent(
        row.id, row.rule, row.alert_id, row.at, row.kind, row.value, json.loads(row.detail)
    )


def _finite(value: float | None) -> float | None:
    # ±inf is a valid figure but not valid JSON nor portable; keep it out of the row
    return value if value is None or abs(value) != float("inf") else None


class SqlAlertStore(AlertStore):
    """Alert rules, alerts and events on a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- rules ---------------------------------------------------------------------------
    def add_rules(self, rules: Sequence[AlertRule], *, replace: bool = False) -> list[AlertRule]:
        if isinstance(rules, (str, bytes, Mapping)) or not all(
            isinstance(r, AlertRule) for r in rules
        ):
            raise InvalidInput("add_rules takes a list of AlertRule values")
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise InvalidInput(f"a rule name is given twice in {names[:20]}")
        now, actor = now_ms(), current_actor()
        try:
            with self.db.write() as conn:
                entries = []
                for rule in rules:
                    existing = conn.execute(
                        select(alert_rules.c.created_at, alert_rules.c.created_by).where(
                            alert_rules.c.name == rule.name
                        )
                    ).first()
                    if existing is not None and not replace:
                        raise AlreadyExists(
                            f"an alert rule named {rule.name!r} already exists; delete it or "
                            "replace it (keel alerts rule add --replace, or load a file)"
                        )
                    values = self._values(rule)
                    if existing is None:
                        conn.execute(
                            alert_rules.insert().values(
                                name=rule.name,
                                created_at=now,
                                updated_at=now,
                                created_by=actor,
                                **values,
                            )
                        )
                    else:
                        conn.execute(
                            alert_rules.update()
                            .where(alert_rules.c.name == rule.name)
                            .values(updated_at=now, **values)
                        )
                    verb = "create" if existing is None else "replace"
                    entries.append(
                        Entry(f"alert_rule.{verb}", "alert_rule", rule.name, rule.masked())
                    )
                if entries:
                    append(conn, entries, actor=actor)
                query = select(alert_rules).where(alert_rules.c.name.in_(names))
                by_name = {row.name: _rule_from(row) for row in conn.execute(query)}
        except sa_exc.IntegrityError:
            raise Conflict("an alert rule was added concurrently; retry") from None
        return [by_name[name] for name in names]

    @staticmethod
    def _values(rule: AlertRule) -> dict[str, Any]:
        return {
            "deployment": rule.deployment,
            "metric": rule.metric,
            "op": rule.op,
            "threshold": rule.threshold,
            "window_s": rule.window_s,
            "for_count": rule.for_,
            "severity": rule.severity,
            "cooldown_s": rule.cooldown_s,
            "repeat_s": rule.repeat_s,
            "notifiers": _dumps([dict(n) for n in rule.notifiers]),
            "actions": _dumps([dict(a) for a in rule.actions]),
            "enabled": rule.enabled,
            "description": rule.description,
        }

    def get_rule(self, name: str) -> AlertRule:
        name = check_rule_name(name)
        with self.db.read() as conn:
            row = conn.execute(select(alert_rules).where(alert_rules.c.name == name)).first()
        if row is None:
            raise NotFound(f"no alert rule named {name!r} (keel alerts rule list)")
        return _rule_from(row)

    def list_rules(self, *, deployment: str | None = None) -> list[AlertRule]:
        query = select(alert_rules).order_by(alert_rules.c.name)
        if deployment is not None:
            from keel.deploy.entities import check_deployment_name

            query = query.where(alert_rules.c.deployment == check_deployment_name(deployment))
        with self.db.read() as conn:
            return [_rule_from(row) for row in conn.execute(query)]

    def delete_rule(self, name: str) -> None:
        name = check_rule_name(name)
        now = now_ms()
        with self.db.write() as conn:
            done = conn.execute(alert_rules.delete().where(alert_rules.c.name == name))
            if done.rowcount != 1:
                raise NotFound(f"no alert rule named {name!r} (keel alerts rule list)")
            entries = [Entry("alert_rule.delete", "alert_rule", name, {})]
            for row in conn.execute(self._open_query(name)).all():
                self._set(conn, row.alert_id, state="resolved", resolved_at=now, evaluated_at=now)
                self._event(
                    conn, name, row.alert_id, now, "resolved", None, {"why": "rule deleted"}
                )
                entries.append(Entry("alert.resolved", "alert", row.alert_id, {"rule": name}))
            append(conn, entries)

    # -- alerts --------------------------------------------------------------------------
    def list_alerts(
        self,
        *,
        state: AlertState | str | None = None,
        rule: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Alert]:
        limit = check_limit(limit)
        query = select(alerts).order_by(alerts.c.started_at.desc(), alerts.c.alert_id.desc())
        if state is not None:
            query = query.where(alerts.c.state == check_state(state).value)
        if rule is not None:
            query = query.where(alerts.c.rule == check_rule_name(rule))
        with self.db.read() as conn:
            return [_alert_from(row) for row in conn.execute(query.limit(limit))]

    def get_alert(self, alert_id: str) -> Alert:
        alert_id = check_alert_id(alert_id)
        with self.db.read() as conn:
            return _alert_from(self._alert_row(conn, alert_id))

    @staticmethod
    def _alert_row(conn: Connection, alert_id: str, *, lock: bool = False) -> Any:
        query = select(alerts).where(alerts.c.alert_id == alert_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"no alert {alert_id!r} (keel alerts list)")
        return row

    def alert_events(
        self, *, alert_id: str | None = None, rule: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[AlertEvent]:
        limit = check_limit(limit)
        query = select(alert_events).order_by(alert_events.c.id.desc()).limit(limit)
        if alert_id is not None:
            query = query.where(alert_events.c.alert_id == check_alert_id(alert_id))
        if rule is not None:
            query = query.where(alert_events.c.rule == check_rule_name(rule))
        with self.db.read() as conn:
            if alert_id is not None:
                self._alert_row(conn, alert_id)
            rows = conn.execute(query).all()
        return [_event_from(row) for row in reversed(rows)]

    def acknowledge(self, alert_id: str) -> Alert:
        alert_id = check_alert_id(alert_id)
        now, actor = now_ms(), current_actor()
        with self.db.write() as conn:
            row = self._alert_row(conn, alert_id, lock=True)
            if row.state == AlertState.RESOLVED.value:
                raise Conflict(f"alert {alert_id} of rule {row.rule!r} is resolved already")
            if row.acknowledged_by is not None:
                raise Conflict(
                    f"alert {alert_id} was acknowledged by {row.acknowledged_by} already"
                )
            self._set(conn, alert_id, acknowledged_by=actor, acknowledged_at=now)
            self._event(conn, row.rule, alert_id, now, "acknowledged", None, {"by": actor})
            append(
                conn,
                [Entry("alert.acknowledge", "alert", alert_id, {"rule": row.rule})],
                actor=actor,
            )
            return _alert_from(self._alert_row(conn, alert_id))

    # -- the evaluator's side --------------------------------------------------------------
    @staticmethod
    def _open_query(rule: str | None = None) -> Any:
        query = select(alerts).where(alerts.c.state != AlertState.RESOLVED.value)
        return query if rule is None else query.where(alerts.c.rule == rule)

    def open_alerts(self) -> dict[str, Alert]:
        """Return each rule's open (pending or firing) alert, by rule name."""
        with self.db.read() as conn:
            return {row.rule: _alert_from(row) for row in conn.execute(self._open_query())}

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
        text = _dumps(dict(detail))
        if len(text) > MAX_DETAIL:
            text = _dumps({"truncated": text[:MAX_DETAIL]})
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
        value = _finite(step.value)
        with self.db.write() as conn:
            row = conn.execute(self._open_query(rule.name).with_for_update()).first()
            if step.transition in ("open-pending", "open-firing"):
                if row is not None:  # another evaluator got here first (lease hand-over)
                    return _alert_from(row)
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
                return _alert_from(self._alert_row(conn, alert_id))
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
                    select(e.c.kind).where(e.c.alert_id == alert_id).order_by(e.c.id.desc())
                ).first()
                if last is None or last.kind != "held":
                    self._event(conn, rule.name, alert_id, now, "held", value, {"why": step.held})
            return _alert_from(self._alert_row(conn, alert_id))

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
                    and json.loads(last.detail) == json.loads(_dumps(dict(detail)))
                ):
                    return False
            self._event(conn, rule, alert_id, now, kind, value, detail)
            if alert_id is not None and error is not None:
                self._set(conn, alert_id, last_error=error[:MAX_DETAIL])
            obj = ("alert", alert_id) if alert_id is not None else ("alert_rule", rule)
            append(conn, [Entry(f"alert.{kind}", obj[0], obj[1], {"rule": rule, **detail})])
        return True
