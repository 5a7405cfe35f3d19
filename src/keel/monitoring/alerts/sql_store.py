"""The alerts store on SQLite or PostgreSQL (one implementation, SQLAlchemy Core).

Each change is one write transaction ending with its audit entry. The evaluator's side
(``open_alerts``, ``last_resolved``, ``apply``, ``record``: ``sql_evaluation``) is on the
SQL store only: it runs in ``keel server``, next to the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy import exc as sa_exc

from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.governance.chain import Entry, append
from keel.governance.identity import current_actor
from keel.monitoring.alerts.entities import (
    Alert,
    AlertEvent,
    AlertState,
    check_alert_id,
    check_state,
)
from keel.monitoring.alerts.rules import AlertRule, check_rule_name, check_rule_outbound
from keel.monitoring.alerts.sql_evaluation import SqlAlertEvaluation, alert_from, dumps
from keel.monitoring.alerts.store import DEFAULT_LIMIT, AlertStore, check_limit
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_alerts import alert_events, alert_rules, alerts

__all__ = ["SqlAlertStore"]


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


def _event_from(row: Any) -> AlertEvent:
    return AlertEvent(
        row.id, row.rule, row.alert_id, row.at, row.kind, row.value, json.loads(row.detail)
    )


class SqlAlertStore(SqlAlertEvaluation, AlertStore):
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
        for rule in rules:
            # resolves webhook hosts: before the write transaction, which must not wait on DNS
            check_rule_outbound(rule)
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
                    if not rule.enabled:  # a disabled rule's alert would stay open forever
                        entries += self._resolve_open(conn, rule.name, now, "rule disabled")
                query = select(alert_rules).where(alert_rules.c.name.in_(names))
                by_name = {row.name: _rule_from(row) for row in conn.execute(query)}
                if entries:
                    append(conn, entries, actor=actor)
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
            "notifiers": dumps([dict(n) for n in rule.notifiers]),
            "actions": dumps([dict(a) for a in rule.actions]),
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
            entries += self._resolve_open(conn, name, now, "rule deleted")
            append(conn, entries)

    def _resolve_open(self, conn: Connection, rule: str, now: int, why: str) -> list[Entry]:
        """Resolve the rule's open alert (if any); return the audit entries to append."""
        entries = []
        for row in conn.execute(self._open_query(rule)).all():
            self._set(conn, row.alert_id, state="resolved", resolved_at=now, evaluated_at=now)
            self._event(conn, rule, row.alert_id, now, "resolved", None, {"why": why})
            entries.append(
                Entry("alert.resolved", "alert", row.alert_id, {"rule": rule, "why": why})
            )
        return entries

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
            return [alert_from(row) for row in conn.execute(query.limit(limit))]

    def get_alert(self, alert_id: str) -> Alert:
        alert_id = check_alert_id(alert_id)
        with self.db.read() as conn:
            return alert_from(self._alert_row(conn, alert_id))

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
            return alert_from(self._alert_row(conn, alert_id))
