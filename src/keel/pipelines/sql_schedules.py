"""Pipeline schedules and triggers on SQLite or PostgreSQL (one SQLAlchemy Core store).

Every change is one write transaction ending with its audit entry
(``pipeline_schedule.create`` …, ``pipeline_trigger.delete``), so the entry commits or
rolls back with the change. A webhook trigger's token is made here, returned once, and
only its BLAKE3 digest is kept.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from typing import Any

from blake3 import blake3
from sqlalchemy import Connection, select
from sqlalchemy import exc as sa_exc

from keel.errors import AlreadyExists, InvalidInput, NotFound
from keel.governance.chain import Entry, append
from keel.governance.identity import current_actor
from keel.pipelines.schedule_store import (
    ScheduleStore,
    check_limit,
    recheck_schedule,
    recheck_trigger,
)
from keel.pipelines.schedules import (
    TRIGGER_KINDS,
    Dispatch,
    PipelineSchedule,
    PipelineTrigger,
    check_name,
    next_due,
)
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_scheduling import (
    pipeline_dispatches,
    pipeline_schedules,
    pipeline_triggers,
)

__all__ = ["SqlScheduleStore", "token_digest", "trigger_cursor"]

S, T, D = pipeline_schedules, pipeline_triggers, pipeline_dispatches


def token_digest(token: str) -> str:
    """Return the digest a webhook token is stored as (the token itself never is)."""
    return blake3(token.encode()).hexdigest()


def schedule_from(row: Any) -> PipelineSchedule:
    """Return the schedule a ``pipeline_schedules`` row holds."""
    return PipelineSchedule(
        name=row.name,
        pipeline=row.pipeline,
        cron=row.cron,
        timezone=row.timezone,
        params=json.loads(row.params),
        missed=row.missed,
        max_catchup=row.max_catchup,
        executor=row.executor,
        workdir=row.workdir,
        enabled=bool(row.enabled),
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        last_run_id=row.last_run_id,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def trigger_from(row: Any) -> PipelineTrigger:
    """Return the trigger a ``pipeline_triggers`` row holds (never its token)."""
    return PipelineTrigger(
        name=row.name,
        pipeline=row.pipeline,
        kind=row.kind,
        subject=row.subject,
        params=json.loads(row.params),
        executor=row.executor,
        workdir=row.workdir,
        enabled=bool(row.enabled),
        fired=row.fired,
        last_fired_at=row.last_fired_at,
        last_run_id=row.last_run_id,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def dispatch_from(row: Any) -> Dispatch:
    """Return the dispatch a ``pipeline_dispatches`` row holds."""
    return Dispatch(
        dispatch_id=row.dispatch_id,
        source=row.source,
        name=row.name,
        event_key=row.event_key,
        status=row.status,
        started_at=row.started_at,
        due_at=row.due_at,
        ended_at=row.ended_at,
        run_id=row.run_id,
        error=row.error,
        pid=row.pid,
    )


def trigger_cursor(conn: Connection, kind: str, subject: str) -> str | None:
    """Return the newest version a version trigger on ``subject`` has already seen: the
    latest model version number, or the latest dataset row's ``created_at:dataset_id``."""
    from sqlalchemy import func

    from keel.store.schema import datasets, model_versions

    if kind == "model_version":
        latest = conn.execute(
            select(func.max(model_versions.c.version)).where(model_versions.c.name == subject)
        ).scalar()
        return str(latest or 0)
    if kind == "dataset":
        row = conn.execute(
            select(datasets.c.created_at, datasets.c.dataset_id)
            .where(datasets.c.name == subject)
            .order_by(datasets.c.created_at.desc(), datasets.c.dataset_id.desc())
            .limit(1)
        ).first()
        return "0:" if row is None else f"{row.created_at}:{row.dataset_id}"
    return None


def _audit(conn: Connection, action: str, kind: str, name: str, change: dict[str, Any]) -> None:
    append(conn, [Entry(action, kind, name, change)], actor=current_actor())


class SqlScheduleStore(ScheduleStore):
    """Schedules and triggers on a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- schedules -----------------------------------------------------------------------
    def _schedule_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(S).where(S.c.name == check_name(name))
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"no pipeline schedule named {name!r}")
        return row

    def create_schedule(
        self, schedule: PipelineSchedule, *, replace: bool = False
    ) -> PipelineSchedule:
        s = recheck_schedule(schedule)
        if not isinstance(replace, bool):
            raise InvalidInput("replace must be True or False")
        now = now_ms()
        values = {
            "pipeline": s.pipeline,
            "workdir": s.workdir,
            "cron": s.cron,
            "timezone": s.timezone,
            "params": json.dumps(s.params, sort_keys=True),
            "missed": s.missed,
            "max_catchup": s.max_catchup,
            "executor": s.executor,
            "enabled": s.enabled,
            "next_run_at": next_due(s.cron, s.timezone, now) if s.enabled else None,
            "updated_at": now,
        }
        change = {k: v for k, v in values.items() if k not in ("updated_at", "workdir")}
        try:
            with self.db.write() as conn:
                old = conn.execute(select(S.c.name).where(S.c.name == s.name).with_for_update())
                if old.first() is not None:
                    if not replace:
                        raise AlreadyExists(
                            f"a pipeline schedule named {s.name!r} exists; delete it first or "
                            "replace it (--replace)"
                        )
                    conn.execute(S.update().where(S.c.name == s.name).values(**values))
                    _audit(conn, "pipeline_schedule.replace", "pipeline_schedule", s.name, change)
                else:
                    conn.execute(
                        S.insert().values(
                            name=s.name, created_at=now, created_by=current_actor(), **values
                        )
                    )
                    _audit(conn, "pipeline_schedule.create", "pipeline_schedule", s.name, change)
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"a pipeline schedule named {s.name!r} exists") from None
        return self.get_schedule(s.name)

    def get_schedule(self, name: str) -> PipelineSchedule:
        with self.db.read() as conn:
            return schedule_from(self._schedule_row(conn, name))

    def list_schedules(self) -> list[PipelineSchedule]:
        with self.db.read() as conn:
            return [schedule_from(r) for r in conn.execute(select(S).order_by(S.c.name))]

    def set_schedule_enabled(self, name: str, enabled: bool) -> PipelineSchedule:
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled must be True or False")
        now = now_ms()
        with self.db.write() as conn:
            row = self._schedule_row(conn, name, lock=True)
            if bool(row.enabled) != enabled:
                upcoming = next_due(row.cron, row.timezone, now) if enabled else None
                conn.execute(
                    S.update()
                    .where(S.c.name == name)
                    .values(enabled=enabled, next_run_at=upcoming, updated_at=now)
                )
                verb = "resume" if enabled else "pause"
                _audit(
                    conn,
                    f"pipeline_schedule.{verb}",
                    "pipeline_schedule",
                    name,
                    {"next_run_at": upcoming},
                )
        return self.get_schedule(name)

    def delete_schedule(self, name: str) -> None:
        with self.db.write() as conn:
            row = self._schedule_row(conn, name, lock=True)
            conn.execute(S.delete().where(S.c.name == name))
            change = {"pipeline": row.pipeline, "cron": row.cron}
            _audit(conn, "pipeline_schedule.delete", "pipeline_schedule", name, change)

    # -- triggers ------------------------------------------------------------------------
    def _trigger_row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(T).where(T.c.name == check_name(name, "trigger"))
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"no pipeline trigger named {name!r}")
        return row

    def create_trigger(self, trigger: PipelineTrigger) -> PipelineTrigger:
        t = recheck_trigger(trigger)
        now = now_ms()
        token = secrets.token_urlsafe(32) if t.kind == "webhook" else None
        try:
            with self.db.write() as conn:
                if conn.execute(select(T.c.name).where(T.c.name == t.name)).first() is not None:
                    raise AlreadyExists(
                        f"a pipeline trigger named {t.name!r} exists; delete it first"
                    )
                conn.execute(
                    T.insert().values(
                        name=t.name,
                        pipeline=t.pipeline,
                        workdir=t.workdir,
                        kind=t.kind,
                        subject=t.subject,
                        params=json.dumps(t.params, sort_keys=True),
                        executor=t.executor,
                        token_hash=None if token is None else token_digest(token),
                        # Only versions newer than those there now fire it.
                        cursor=trigger_cursor(conn, t.kind, t.subject),
                        enabled=t.enabled,
                        fired=0,
                        created_at=now,
                        updated_at=now,
                        created_by=current_actor(),
                    )
                )
                change = {
                    "pipeline": t.pipeline,
                    "kind": t.kind,
                    "subject": t.subject,
                    "params": t.params,
                }
                _audit(conn, "pipeline_trigger.create", "pipeline_trigger", t.name, change)
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"a pipeline trigger named {t.name!r} exists") from None
        return replace(self.get_trigger(t.name), token=token)

    def get_trigger(self, name: str) -> PipelineTrigger:
        with self.db.read() as conn:
            return trigger_from(self._trigger_row(conn, name))

    def list_triggers(self, *, kind: str | None = None) -> list[PipelineTrigger]:
        query = select(T).order_by(T.c.name)
        if kind is not None:
            if kind not in TRIGGER_KINDS:
                raise InvalidInput(
                    f"trigger kind {kind!r:.100} must be one of {', '.join(TRIGGER_KINDS)}"
                )
            query = query.where(T.c.kind == kind)
        with self.db.read() as conn:
            return [trigger_from(r) for r in conn.execute(query)]

    def delete_trigger(self, name: str) -> None:
        with self.db.write() as conn:
            row = self._trigger_row(conn, name, lock=True)
            conn.execute(T.delete().where(T.c.name == name))
            change = {"pipeline": row.pipeline, "kind": row.kind, "subject": row.subject}
            _audit(conn, "pipeline_trigger.delete", "pipeline_trigger", name, change)

    def webhook_matches(self, name: str, token: str) -> bool:
        """Return whether ``token`` is webhook trigger ``name``'s (constant-time compare);
        ``NotFound`` if there is no such webhook trigger."""
        import hmac

        with self.db.read() as conn:
            row = self._trigger_row(conn, name)
        if row.kind != "webhook" or row.token_hash is None:
            raise NotFound(f"pipeline trigger {name!r} is not a webhook trigger")
        return hmac.compare_digest(token_digest(token), row.token_hash)

    # -- dispatches ----------------------------------------------------------------------
    def list_dispatches(
        self, *, source: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[Dispatch]:
        query = select(D).order_by(D.c.started_at.desc(), D.c.dispatch_id).limit(check_limit(limit))
        if source is not None:
            if source not in ("schedule", "trigger"):
                raise InvalidInput(f"source must be schedule or trigger, not {source!r:.100}")
            query = query.where(D.c.source == source)
        if name is not None:
            query = query.where(D.c.name == check_name(name, "schedule or trigger"))
        with self.db.read() as conn:
            return [dispatch_from(r) for r in conn.execute(query)]
