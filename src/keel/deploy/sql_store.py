"""The deployments store on SQLite or PostgreSQL (one implementation, SQLAlchemy Core).

Every change runs in one write transaction: the deployment row is read (``FOR UPDATE`` on
PostgreSQL; SQLite write transactions are serialised already), the pure transition
(``keel.deploy.transitions``) decides the next plan, and the row moves to the next
revision only if it is still at the one read (compare and set), with one history row and
one audit entry in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy import exc as sa_exc

from keel.deploy import transitions as tr
from keel.deploy.analysis import ABConfig
from keel.deploy.entities import (
    Deployment,
    HistoryEntry,
    Rollout,
    Strategy,
    check_deployment_name,
    check_environment,
    plan_from_dict,
    plan_to_dict,
)
from keel.deploy.refs import parse_version_ref
from keel.deploy.sql_outcomes import SqlOutcomes
from keel.deploy.store import DEFAULT_HISTORY, DeploymentStore, check_limit, check_weights
from keel.deploy.traffic import BackendStats
from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.governance.chain import Entry, append
from keel.governance.identity import current_actor
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_deployments import deployment_history, deployment_outcomes, deployments

__all__ = ["SqlDeploymentStore"]

MAX_DESCRIPTION = 10_000
Decide = Callable[[Deployment], "tr.Change | None"]


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _deployment_from(row: Any) -> Deployment:
    rollout = None if row.rollout is None else Rollout.from_dict(json.loads(row.rollout))
    return Deployment(
        name=row.name,
        environment=row.environment,
        description=row.description,
        plan=plan_from_dict(json.loads(row.plan)),
        rollout=rollout,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


class SqlDeploymentStore(SqlOutcomes, DeploymentStore):
    """Deployments on a SQL metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _from_row(row: Any) -> Deployment:
        return _deployment_from(row)

    # -- reading -------------------------------------------------------------------------
    def _row(self, conn: Connection, name: str, *, lock: bool = False) -> Any:
        query = select(deployments).where(deployments.c.name == name)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"no deployment named {name!r}")
        return row

    def get_deployment(self, name: str) -> Deployment:
        name = check_deployment_name(name)
        with self.db.read() as conn:
            return _deployment_from(self._row(conn, name))

    def list_deployments(self, *, environment: str | None = None) -> list[Deployment]:
        query = select(deployments).order_by(deployments.c.name)
        if environment is not None:
            query = query.where(deployments.c.environment == check_environment(environment))
        with self.db.read() as conn:
            return [_deployment_from(row) for row in conn.execute(query)]

    def deployment_history(self, name: str, *, limit: int = DEFAULT_HISTORY) -> list[HistoryEntry]:
        name, limit = check_deployment_name(name), check_limit(limit)
        h = deployment_history
        query = select(h).where(h.c.deployment == name).order_by(h.c.revision.desc()).limit(limit)
        with self.db.read() as conn:
            self._row(conn, name)
            rows = conn.execute(query).all()
        return [
            HistoryEntry(
                r.deployment,
                r.revision,
                r.at,
                r.actor,
                r.action,
                plan_from_dict(json.loads(r.plan)),
                r.reason,
            )
            for r in reversed(rows)
        ]

    # -- resolving versions --------------------------------------------------------------
    @staticmethod
    def _resolve(conn: Connection, ref: str) -> tuple[str, int]:
        parsed = parse_version_ref(ref)
        mv = t.model_versions
        if parsed.version is not None:
            query = select(mv.c.version).where(
                mv.c.name == parsed.name, mv.c.version == parsed.version
            )
        elif parsed.alias is not None:
            ma = t.model_aliases
            query = select(ma.c.version).where(ma.c.name == parsed.name, ma.c.alias == parsed.alias)
        else:
            query = select(func.max(mv.c.version)).where(mv.c.name == parsed.name)
        version = conn.execute(query).scalar()
        if version is None:
            raise NotFound(f"{ref!r} names no registered model version; register it first")
        return parsed.name, int(version)

    # -- writing -------------------------------------------------------------------------
    def _record(self, conn: Connection, name: str, change: tr.Change, now: int, verb: str) -> None:
        actor = current_actor()
        plan = plan_to_dict(change.plan)
        conn.execute(
            deployment_history.insert().values(
                deployment=name,
                revision=change.plan.revision,
                at=now,
                actor=actor,
                action=change.action,
                plan=_dumps(plan),
                reason=change.reason,
            )
        )
        audited = {
            "revision": change.plan.revision,
            "action": change.action,
            "backends": [f"{b.key}={b.weight:g}%:{b.role.value}" for b in change.plan.backends],
            "shadow": None if change.plan.shadow is None else change.plan.shadow.key,
            "reason": change.reason,
        }
        append(conn, [Entry(f"deployment.{verb}", "deployment", name, audited)], actor=actor)

    def transition(self, name: str, decide: Decide) -> Deployment | None:
        """Return the deployment after applying ``decide``'s change, or None if it made none.

        ``decide`` gets the deployment as it stands inside the write transaction.
        """
        return self._transition(name, lambda conn, dep: decide(dep))

    def _transition(
        self, name: str, decide: Callable[[Connection, Deployment], tr.Change | None]
    ) -> Deployment | None:
        name = check_deployment_name(name)
        now = now_ms()
        with self.db.write() as conn:
            current = _deployment_from(self._row(conn, name, lock=True))
            change = decide(conn, current)
            if change is None:
                return None
            rollout = change.rollout
            done = conn.execute(
                deployments.update()
                .where(deployments.c.name == name, deployments.c.revision == current.revision)
                .values(
                    plan=_dumps(plan_to_dict(change.plan)),
                    revision=change.plan.revision,
                    strategy=None if rollout is None else rollout.strategy.value,
                    rollout=None if rollout is None else _dumps(rollout.to_dict()),
                    step=None if rollout is None else rollout.step,
                    step_started_at=None if rollout is None else rollout.step_started_at,
                    updated_at=now,
                )
            )
            if done.rowcount != 1:
                raise Conflict(f"deployment {name!r} changed concurrently; retry")
            verb = change.action.split(".")[0]
            self._record(conn, name, change, now, "rollout" if verb == "rollout" else verb)
            return _deployment_from(self._row(conn, name))

    def create_deployment(
        self,
        name: str,
        model: str,
        *,
        environment: str = "default",
        description: str | None = None,
    ) -> Deployment:
        name, environment = check_deployment_name(name), check_environment(environment)
        if description is not None and (
            not isinstance(description, str) or len(description) > MAX_DESCRIPTION
        ):
            raise InvalidInput(f"a description is a string of at most {MAX_DESCRIPTION} characters")
        now = now_ms()
        try:
            with self.db.write() as conn:
                plan = tr.create_plan(name, *self._resolve(conn, model))
                conn.execute(
                    deployments.insert().values(
                        name=name,
                        environment=environment,
                        description=description,
                        plan=_dumps(plan_to_dict(plan)),
                        revision=plan.revision,
                        created_at=now,
                        updated_at=now,
                        created_by=current_actor(),
                    )
                )
                reason = f"created in {environment} serving {plan.backends[0].key}"
                self._record(conn, name, tr.Change(plan, None, "create", reason), now, "create")
                return _deployment_from(self._row(conn, name))
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"a deployment named {name!r} already exists") from None

    def delete_deployment(self, name: str) -> None:
        name = check_deployment_name(name)
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            for table in (deployment_outcomes, deployment_history):
                conn.execute(table.delete().where(table.c.deployment == name))
            conn.execute(deployments.delete().where(deployments.c.name == name))
            change = {"revision": row.revision, "environment": row.environment}
            append(conn, [Entry("deployment.delete", "deployment", name, change)])

    def record_reload(self, name: str, backends: Sequence[str]) -> None:
        """Append the audit entry of a server-side reload of ``name``'s ``backends``
        (``model/version`` keys); ``NotFound`` if there is no such deployment."""
        name = check_deployment_name(name)
        with self.db.write() as conn:
            row = self._row(conn, name, lock=True)
            change = {"revision": row.revision, "backends": sorted(backends)}
            append(conn, [Entry("deployment.reload", "deployment", name, change)])

    def start_rollout(
        self,
        name: str,
        model: str,
        *,
        strategy: str = "blue-green",
        config: Mapping[str, Any] | None = None,
    ) -> Deployment:
        kind = tr.parse_strategy(strategy)
        if config is not None and not isinstance(config, Mapping):
            raise InvalidInput(f"a rollout's config is an object, not {config!r:.80}")

        with self.db.read() as conn:
            candidate = self._resolve(conn, model)
            extra: tuple[tuple[str, int], ...] = ()
            if kind is Strategy.AB:
                refs = ABConfig.parse(config).variants
                extra = tuple(self._resolve(conn, ref) for ref in refs)
        return self._must(
            self.transition(
                name, lambda dep: tr.start(dep, candidate, kind, config, now_ms(), extra)
            )
        )

    @staticmethod
    def _must(dep: Deployment | None) -> Deployment:
        if dep is None:  # every operation's decide returns a change or raises
            raise Conflict("the deployment did not change")
        return dep

    def _keys(self, refs: Sequence[str]) -> list[str]:
        with self.db.read() as conn:
            return ["{}/{}".format(*self._resolve(conn, ref)) for ref in refs]

    def set_traffic(self, name: str, weights: Mapping[str, float]) -> Deployment:
        clean = check_weights(weights)
        keys = self._keys(list(clean))
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"a version is named twice in {list(clean)}")
        by_key = dict(zip(keys, clean.values(), strict=True))
        return self._must(self.transition(name, lambda dep: tr.set_traffic(dep, by_key)))

    def promote(
        self,
        name: str,
        *,
        to: str | None = None,
        stats: Mapping[str, BackendStats] | None = None,
    ) -> Deployment:
        key = None if to is None else self._keys([to])[0]
        return self._must(self.transition(name, lambda dep: tr.promote(dep, now_ms(), key, stats)))

    def rollback(
        self,
        name: str,
        *,
        to: str | None = None,
        stats: Mapping[str, BackendStats] | None = None,
    ) -> Deployment:
        target = None
        if to is not None:
            with self.db.read() as conn:
                target = self._resolve(conn, to)

        def decide(conn: Connection, dep: Deployment) -> tr.Change:
            previous = self._previous_stable(conn, dep)
            return tr.rollback(dep, now_ms(), target, previous, stats)

        return self._must(self._transition(name, decide))

    @staticmethod
    def _previous_stable(conn: Connection, dep: Deployment) -> str | None:
        h = deployment_history
        query = (
            select(h.c.plan)
            .where(h.c.deployment == dep.name)
            .order_by(h.c.revision.desc())
            .limit(200)
        )
        current = dep.stable.key
        for (text,) in conn.execute(query):
            plan = plan_from_dict(json.loads(text))
            stable = max(plan.live, key=lambda b: (b.role.value == "stable", b.weight))
            if stable.key != current:
                return stable.key
        return None

    def abort(self, name: str, *, stats: Mapping[str, BackendStats] | None = None) -> Deployment:
        return self._must(self.transition(name, lambda dep: tr.abort(dep, now_ms(), stats)))

    def pause(self, name: str) -> Deployment:
        """Return the deployment with its running canary held at its current step."""
        return self._must(self.transition(name, lambda dep: tr.pause(dep, now_ms())))

    def resume(self, name: str) -> Deployment:
        """Return the deployment with its paused canary going on (the step restarts now)."""
        return self._must(self.transition(name, lambda dep: tr.resume(dep, now_ms())))
