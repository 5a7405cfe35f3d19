"""A/B outcomes on SQL: recorded per running test, analysed from per-variant aggregates."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, select

from keel.deploy.analysis import ABAnalysis, ABConfig, analyse
from keel.deploy.entities import Deployment, Outcome, Strategy, check_deployment_name
from keel.errors import Conflict, InvalidInput
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.schema_deployments import deployment_outcomes

__all__ = ["MAX_OUTCOMES", "SqlOutcomes"]

MAX_OUTCOMES = 10_000  # per call


class SqlOutcomes:
    """Recording and analysing A/B outcomes (mixed into ``SqlDeploymentStore``)."""

    # Provided by SqlDeploymentStore.
    db: Database
    _row: Callable[..., Any]
    _from_row: Callable[[Any], Deployment]

    def record_outcomes(self, name: str, outcomes: Sequence[Outcome]) -> int:
        name = check_deployment_name(name)
        if isinstance(outcomes, (str, bytes)) or not isinstance(outcomes, Sequence):
            raise InvalidInput("outcomes are a list")
        if not 1 <= len(outcomes) <= MAX_OUTCOMES:
            raise InvalidInput(f"record 1 to {MAX_OUTCOMES} outcomes per call, not {len(outcomes)}")
        now = now_ms()
        with self.db.write() as conn:
            dep = self._from_row(self._row(conn, name))
            rollout = dep.rollout
            if rollout is None or rollout.strategy is not Strategy.AB or not rollout.running:
                raise Conflict(f"deployment {name!r} has no A/B test running to record outcomes of")
            config = ABConfig.parse({k: v for k, v in rollout.config.items() if k != "keys"})
            keys = set(rollout.config.get("keys") or ())
            rows = [self._outcome_row(dep, rollout.id, o, config, keys, now) for o in outcomes]
            conn.execute(deployment_outcomes.insert(), rows)
        return len(rows)

    @staticmethod
    def _outcome_row(
        dep: Deployment,
        rollout_id: int,
        outcome: Outcome,
        config: ABConfig,
        keys: set[str],
        now: int,
    ) -> dict[str, Any]:
        value = outcome.value
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise InvalidInput(f"an outcome value is a finite number, not {value!r}")
        if config.outcome == "binary" and value not in (0, 1):
            raise InvalidInput(f"this A/B test's outcomes are binary (0 or 1), not {value!r}")
        request_key = outcome.request_key
        if request_key is not None and (not isinstance(request_key, str) or len(request_key) > 256):
            raise InvalidInput("a request key is a string of at most 256 characters")
        if outcome.variant is not None:
            variant = outcome.variant
            if variant not in keys:
                raise InvalidInput(
                    f"{variant!r} is not a variant of this A/B test; its variants are "
                    f"{sorted(keys)}"
                )
        elif request_key is not None:
            variant = dep.plan.choose_sticky(request_key).key
        else:
            raise InvalidInput("an outcome names its variant or its request key")
        return {
            "deployment": dep.name,
            "rollout": rollout_id,
            "variant": variant,
            "request_key": request_key,
            "value": float(value),
            "at": now,
        }

    def ab_analysis(self, name: str) -> ABAnalysis:
        name = check_deployment_name(name)
        o = deployment_outcomes
        with self.db.read() as conn:
            dep = self._from_row(self._row(conn, name))
            rollout = dep.rollout
            if rollout is None or rollout.strategy is not Strategy.AB:
                raise Conflict(f"deployment {name!r} has had no A/B test to analyse")
            query = (
                select(
                    o.c.variant, func.count(), func.sum(o.c.value), func.sum(o.c.value * o.c.value)
                )
                .where(o.c.deployment == name, o.c.rollout == rollout.id)
                .group_by(o.c.variant)
            )
            aggregates = {
                v: (int(n), float(s or 0.0), float(q or 0.0)) for v, n, s, q in conn.execute(query)
            }
        config = ABConfig.parse({k: v for k, v in rollout.config.items() if k != "keys"})
        keys = list(rollout.config.get("keys") or [rollout.stable, rollout.candidate])
        return analyse(name, rollout.id, config, keys, aggregates)
