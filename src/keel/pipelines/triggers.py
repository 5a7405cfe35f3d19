"""Triggers: start pipelines when an alert fires, a version appears or a webhook is called.

``fire_trigger(stores, kind, subject, payload)`` starts the run of every enabled trigger
of ``kind`` listening to ``subject`` (an alert trigger on ``"*"`` hears every rule) and
returns the dispatch ids it started — the alerts' ``trigger`` action calls exactly this,
which closes the loop: drift alert → retraining pipeline → new version → gates → canary.
Each run's params are the trigger's with ``{field}`` filled from ``payload``.

New model and dataset versions are noticed by :func:`poll_versions`, a periodic job: for
each version trigger, every version newer than the trigger's cursor fires it once (the
dispatch is unique per version, and the cursor moves in the same transaction).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select

from keel.errors import Conflict, InvalidInput
from keel.pipelines.dispatch import (
    Launcher,
    dispatch_values,
    insert_dispatch,
    new_dispatch_id,
)
from keel.pipelines.schedules import MAX_PARAM_TEXT, TRIGGER_KINDS
from keel.store.clock import now_ms
from keel.store.leases import new_holder_id
from keel.store.schema_scheduling import pipeline_triggers

__all__ = ["fire_trigger", "poll_versions", "render_params"]

T = pipeline_triggers
MAX_PAYLOAD_KEYS = 100
MAX_VERSIONS_PER_TICK = 100
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,99})\}")
_HOLDER = new_holder_id()
# the payload field that names the subject, for ``{field}`` in a trigger's params
_SUBJECT_FIELD = {
    "alert": "rule",
    "model_version": "model",
    "dataset": "dataset",
    "webhook": "trigger",
}


def render_params(params: Mapping[str, str], payload: Mapping[str, Any]) -> dict[str, str]:
    """Return ``params`` with each ``{field}`` replaced by the payload's value (a field the
    payload lacks is left as written)."""

    def fill(match: re.Match[str]) -> str:
        value = payload.get(match.group(1))
        if value is None:
            return match.group(0)
        return value if isinstance(value, str) else json.dumps(value)

    out = {}
    for key, text in params.items():
        value = _FIELD.sub(fill, text)
        if len(value) > MAX_PARAM_TEXT:
            raise InvalidInput(
                f"param {key!r} filled from the event is over {MAX_PARAM_TEXT} characters"
            )
        out[key] = value
    return out


def _check_payload(payload: object) -> dict[str, Any]:
    if payload is None:
        return {}
    if not isinstance(payload, Mapping) or len(payload) > MAX_PAYLOAD_KEYS:
        raise InvalidInput(f"a trigger's payload is a mapping of at most {MAX_PAYLOAD_KEYS} keys")
    return {str(k): v for k, v in payload.items()}


def _db(stores: Any) -> Any:
    db = getattr(stores.tracking, "db", None)
    if db is None:
        raise Conflict("triggers start runs on the server: fire them on a store with a database")
    return db


def _fire_row(
    db: Any,
    launcher: Launcher,
    row: Any,
    event_key: str,
    payload: dict[str, Any],
    *,
    cursor: tuple[str | None, str] | None = None,
    refuse_bad: bool = False,
) -> str | None:
    """Start ``row``'s run for one event; None if that event has a run already (or, with
    ``cursor`` = (expected, new), if another server moved the cursor first).

    Params the payload cannot fill are recorded as the trigger's ``last_error``; with
    ``refuse_bad`` (a webhook: its caller is waiting for the answer) they also raise
    ``InvalidInput``."""
    dispatch_id = new_dispatch_id()
    now, bad = now_ms(), ""
    try:
        params = render_params(json.loads(row.params), payload)
    except InvalidInput as exc:
        params, bad = None, str(exc)
    with db.write() as conn:
        if cursor is not None:
            moved = conn.execute(
                T.update()
                .where(T.c.name == row.name, T.c.cursor == cursor[0])
                .values(cursor=cursor[1])
            ).rowcount
            if not moved:
                return None
        if params is not None:
            values = dispatch_values(
                dispatch_id=dispatch_id,
                source="trigger",
                name=row.name,
                event_key=event_key,
                definition=row,
                params=params,
                holder=_HOLDER,
                lease=None,
                due_at=None,
                now=now,
            )
            if not insert_dispatch(conn, values):
                return None
            conn.execute(
                T.update()
                .where(T.c.name == row.name)
                .values(
                    fired=T.c.fired + 1, last_fired_at=now, last_status="running", last_error=None
                )
            )
        else:
            conn.execute(
                T.update().where(T.c.name == row.name).values(last_error=bad, last_fired_at=now)
            )
    if params is None:  # recorded (and the cursor moved): now tell a waiting caller
        if refuse_bad:
            raise InvalidInput(f"trigger {row.name!r} started nothing: {bad}")
        return None
    launcher.start(dispatch_id, row.workdir)
    return dispatch_id


def fire_trigger(stores: Any, kind: str, subject: str, payload: dict[str, Any]) -> list[str]:
    """Start every enabled trigger of ``kind`` on ``subject``; return the started dispatch
    ids (each names its pipeline run once it has started; see ``list_dispatches``).

    ``kind``: alert (subject the rule name; triggers on it or on ``"*"``), model_version
    (the model's name), dataset (the dataset's name) or webhook (the trigger's name).
    ``payload["event_key"]``, if given, makes a repeat of one event start nothing.
    """
    from keel.pipelines.schedule_runner import launcher_for

    if kind not in TRIGGER_KINDS:
        raise InvalidInput(f"trigger kind {kind!r:.100} must be one of {', '.join(TRIGGER_KINDS)}")
    if not isinstance(subject, str) or not 1 <= len(subject) <= 256:
        raise InvalidInput(f"a trigger's subject is 1-256 characters, got {subject!r:.100}")
    payload = _check_payload(payload)
    db = _db(stores)
    query = select(T).where(T.c.kind == kind, T.c.enabled.is_(True))
    if kind == "webhook":
        query = query.where(T.c.name == subject)
    elif kind == "alert":
        query = query.where(or_(T.c.subject == subject, T.c.subject == "*"))
    else:
        query = query.where(T.c.subject == subject)
    with db.read() as conn:
        rows = conn.execute(query.order_by(T.c.name)).all()
    event = payload.get("event_key")
    key = str(event)[:250] if event is not None else uuid.uuid4().hex
    payload.setdefault(_SUBJECT_FIELD[kind], subject)
    payload.setdefault("kind", kind)
    launcher = launcher_for(stores)
    started = []
    for row in rows:
        dispatch_id = _fire_row(
            db, launcher, row, f"{kind}:{key}", payload, refuse_bad=kind == "webhook"
        )
        if dispatch_id is not None:
            started.append(dispatch_id)
    return started


def _newer_models(conn: Any, subject: str, cursor: str | None) -> list[tuple[str, dict[str, Any]]]:
    from keel.store.schema import model_versions as mv

    seen = int(cursor) if cursor and cursor.isdigit() else 0
    rows = conn.execute(
        select(mv.c.version, mv.c.run_id)
        .where(mv.c.name == subject, mv.c.version > seen)
        .order_by(mv.c.version)
        .limit(MAX_VERSIONS_PER_TICK)
    ).all()
    return [
        (
            str(r.version),
            {
                "model": subject,
                "version": str(r.version),
                "uri": f"models:/{subject}/{r.version}",
                "run_id": r.run_id,
            },
        )
        for r in rows
    ]


def _newer_datasets(
    conn: Any, subject: str, cursor: str | None
) -> list[tuple[str, dict[str, Any]]]:
    from sqlalchemy import and_

    from keel.store.schema import datasets as ds

    at_text, _, last_id = (cursor or "0:").partition(":")
    at = int(at_text) if at_text.isdigit() else 0
    rows = conn.execute(
        select(ds.c.dataset_id, ds.c.digest, ds.c.created_at)
        .where(
            ds.c.name == subject,
            or_(ds.c.created_at > at, and_(ds.c.created_at == at, ds.c.dataset_id > last_id)),
        )
        .order_by(ds.c.created_at, ds.c.dataset_id)
        .limit(MAX_VERSIONS_PER_TICK)
    ).all()
    return [
        (
            f"{r.created_at}:{r.dataset_id}",
            {"dataset": subject, "dataset_id": r.dataset_id, "digest": r.digest},
        )
        for r in rows
    ]


def poll_versions(stores: Any, launcher: Launcher | None = None) -> list[str]:
    """Fire every version trigger once per model or dataset version newer than its cursor;
    return the dispatch ids started."""
    from keel.pipelines.schedule_runner import launcher_for

    db = _db(stores)
    launcher = launcher or launcher_for(stores)
    with db.read() as conn:
        rows = conn.execute(
            select(T).where(T.c.kind.in_(("model_version", "dataset")), T.c.enabled.is_(True))
        ).all()
    started = []
    for row in rows:
        newer = _newer_models if row.kind == "model_version" else _newer_datasets
        with db.read() as conn:
            versions = newer(conn, row.subject, row.cursor)
        cursor = row.cursor
        for key, payload in versions:
            dispatch_id = _fire_row(
                db, launcher, row, f"{row.kind}:{key}", payload, cursor=(cursor, key)
            )
            cursor = key
            if dispatch_id is not None:
                started.append(dispatch_id)
    return started
