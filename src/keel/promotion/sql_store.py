"""The promotions store on SQLite or PostgreSQL (one implementation, SQLAlchemy Core).

Each approval and each promotion attempt is one row plus one audit entry (``promotion.
approve``, ``promotion.<outcome>`` on the version ``model/version``) in one transaction.
``promote`` runs the attempt here (``keel.promotion.engine``); ``record_promotion`` stores
what the engine decided and is no part of the interface: nothing a client sends becomes
a promotion record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from keel.errors import InvalidInput, NotFound
from keel.governance.chain import Entry, append
from keel.governance.identity import current_actor
from keel.promotion.entities import Approval, GateResult, PromotionResult
from keel.promotion.store import (
    DEFAULT_LIMIT,
    MAX_RECORD,
    PromotionStore,
    check_comment,
    check_limit,
    check_record,
)
from keel.registry.uris import check_alias, check_model_name
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_promotions import promotion_approvals, promotions

if TYPE_CHECKING:
    from pathlib import Path

    from keel.environments import Environment
    from keel.registry.entities import ModelVersion
    from keel.stores import Stores

__all__ = ["SqlPromotionStore", "check_version"]


def check_version(version: object) -> int:
    """Return a valid version number (1, 2, 3, …); ``InvalidInput`` otherwise."""
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31:
        raise InvalidInput(f"version must be a positive integer, not {version!r:.80}")
    return version


def _check_environment(name: object) -> str:
    from keel.environments import check_environment_name

    return check_environment_name(name)


def _dumps(value: Any) -> str:
    text = json.dumps(value, allow_nan=False, separators=(",", ":"), default=str)
    if len(text) > MAX_RECORD:
        raise InvalidInput(f"a promotion's record is at most {MAX_RECORD} characters of JSON")
    return text


def _approval(row: Any) -> Approval:
    return Approval(
        row.model, row.version, row.environment, row.approver, row.role, row.comment, row.at
    )


def _promotion(row: Any) -> PromotionResult:
    return PromotionResult(
        promotion_id=row.promotion_id,
        model=row.model,
        version=row.version,
        environment=row.environment,
        alias=row.alias,
        outcome=row.outcome,
        dry_run=bool(row.dry_run),
        previous_version=row.previous_version,
        gates=tuple(GateResult.from_dict(g) for g in json.loads(row.gates)),
        deployment=row.deployment,
        rollout=None if row.rollout is None else json.loads(row.rollout),
        reason=row.reason,
        actor=row.actor,
        at=row.at,
    )


class SqlPromotionStore(PromotionStore):
    """Approvals and promotions on a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _check_version_exists(conn: Connection, model: str, version: int) -> None:
        mv = t.model_versions
        query = select(mv.c.version).where(mv.c.name == model, mv.c.version == version)
        if conn.execute(query).first() is None:
            raise NotFound(f"model {model!r} has no version {version}; register it first")

    def add_approval(
        self,
        model: str,
        version: int,
        environment: str,
        *,
        comment: str | None = None,
        required_role: str | None = None,
        role: str | None = None,
    ) -> Approval:
        """See ``PromotionStore.add_approval``; ``role`` is the approver's role as the
        server checked it (None when nothing checked it)."""
        model, version = check_model_name(model), check_version(version)
        environment, comment = _check_environment(environment), check_comment(comment)
        actor, now = current_actor(), now_ms()
        with self.db.write() as conn:
            self._check_version_exists(conn, model, version)
            conn.execute(
                promotion_approvals.insert().values(
                    model=model,
                    version=version,
                    environment=environment,
                    approver=actor,
                    role=role,
                    comment=comment,
                    at=now,
                )
            )
            change = {"environment": environment, "role": role, "comment": comment}
            entry = Entry("promotion.approve", "version", f"{model}/{version}", change)
            append(conn, [entry], actor=actor)
        return Approval(model, version, environment, actor, role, comment, now)

    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        model, version = check_model_name(model), check_version(version)
        environment = _check_environment(environment)
        a = promotion_approvals
        query = (
            select(a)
            .where(a.c.model == model, a.c.version == version, a.c.environment == environment)
            .order_by(a.c.id)
        )
        with self.db.read() as conn:
            return [_approval(row) for row in conn.execute(query)]

    def promote(
        self,
        stores: Stores,
        version: ModelVersion,
        environment: str | Environment | None,
        *,
        dry_run: bool,
        project: Path,
    ) -> PromotionResult:
        from keel.promotion.engine import environment_of, run_promotion

        env = environment_of(environment)
        return run_promotion(stores, self, env, version, dry_run=dry_run, project=project)

    def record_promotion(self, record: PromotionResult) -> PromotionResult:
        """Return ``record`` (an attempt ``run_promotion`` decided) stored with a new id,
        the current actor and time, and audited in the same transaction."""
        record = check_record(record)
        model, version = check_model_name(record.model), check_version(record.version)
        environment, alias = _check_environment(record.environment), check_alias(record.alias)
        stored = replace(
            record,
            promotion_id=uuid.uuid4().hex,
            model=model,
            version=version,
            environment=environment,
            alias=alias,
            actor=current_actor(),
            at=now_ms(),
        )
        gates = _dumps([g.to_dict() for g in stored.gates])
        rollout = None if stored.rollout is None else _dumps(stored.rollout)
        with self.db.write() as conn:
            self._check_version_exists(conn, model, version)
            conn.execute(
                promotions.insert().values(
                    promotion_id=stored.promotion_id,
                    model=model,
                    version=version,
                    environment=environment,
                    alias=alias,
                    outcome=stored.outcome,
                    dry_run=stored.dry_run,
                    previous_version=stored.previous_version,
                    gates=gates,
                    deployment=stored.deployment,
                    rollout=rollout,
                    reason=stored.reason,
                    actor=stored.actor,
                    at=stored.at,
                )
            )
            change = {
                "promotion_id": stored.promotion_id,
                "environment": environment,
                "alias": alias,
                "previous_version": stored.previous_version,
                "gates": {g.name: g.passed for g in stored.gates},
                "deployment": stored.deployment,
                "rollout": stored.rollout,
                "reason": stored.reason,
            }
            entry = Entry(f"promotion.{stored.outcome}", "version", f"{model}/{version}", change)
            append(conn, [entry], actor=stored.actor)
        return stored

    def list_promotions(
        self,
        *,
        environment: str | None = None,
        model: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[PromotionResult]:
        p = promotions
        query = select(p).order_by(p.c.id.desc()).limit(check_limit(limit))
        if environment is not None:
            query = query.where(p.c.environment == _check_environment(environment))
        if model is not None:
            query = query.where(p.c.model == check_model_name(model))
        with self.db.read() as conn:
            return [_promotion(row) for row in conn.execute(query)]
