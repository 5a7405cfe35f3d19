"""The pure state machine of a deployment: each operation's new plan, rollout and reason.

Nothing here reads or writes a store: a function takes the deployment as it stands (and
the versions the store resolved, the clock, the live figures) and returns a
:class:`Change` — the next plan at the next revision, the rollout after it, the action
and the reason the history records. Stores persist a ``Change``; the controller applies
its plan.

This module starts a rollout and steps it on, which is where strategies differ; the
transitions that end, hold or override one whatever its strategy (promote, abort,
rollback, fail, pause, resume, set_traffic) are ``keel.deploy.changes``, re-exported here
so that ``transitions`` stays the one name callers use.

Strategies:

- blue-green: step 0 loads the candidate as STANDBY (weight 0) beside the stable; once the
  data plane has applied (warmed, health-checked, smoke-tested) it, ``step`` switches 100%
  to it atomically and keeps the old stable as STANDBY for an instant rollback;
- canary: ``keel.deploy.canary`` (weights per step, an interval, a gate); a failed gate
  rolls back, a passed last step promotes;
- A/B: weights per variant and a sticky key; it ends when promoted, aborted or rolled back;
- shadow: the candidate is the plan's ``shadow``; it ends after ``duration_s`` (if set) or
  by hand, and its live figures (agreement) are kept in the rollout's summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from keel.deploy.analysis import ABConfig
from keel.deploy.canary import CanaryConfig, evaluate_gate
from keel.deploy.changes import (
    Change,
    Key,
    abort,
    backend,
    fail,
    next_plan,
    pause,
    promote,
    resume,
    rollback,
    set_traffic,
    shadow_summary,
    version_key,
)
from keel.deploy.entities import Deployment, Rollout, Strategy
from keel.deploy.traffic import Backend, BackendStats, Role, TrafficPlan
from keel.errors import Conflict, InvalidInput

__all__ = [
    "Change",
    "abort",
    "create_plan",
    "fail",
    "parse_strategy",
    "pause",
    "promote",
    "resume",
    "rollback",
    "set_traffic",
    "shadow_summary",
    "start",
    "step",
]


def create_plan(name: str, model: str, version: int) -> TrafficPlan:
    """Return a new deployment's first plan: all traffic to one version (revision 1)."""
    return TrafficPlan(name, 1, (Backend(model, version, 100.0, Role.STABLE),))


def parse_strategy(strategy: object) -> Strategy:
    """Return the strategy named; ``InvalidInput`` listing the known ones otherwise."""
    try:
        return Strategy(strategy)
    except ValueError:
        known = ", ".join(s.value for s in Strategy)
        raise InvalidInput(f"unknown strategy {strategy!r}; use one of {known}") from None


def _shadow_config(data: Mapping[str, Any] | None) -> dict[str, Any]:
    data = dict(data or {})
    unknown = set(data) - {"duration_s"}
    if unknown:
        raise InvalidInput(
            f"unknown shadow option(s): {', '.join(sorted(unknown))}; known: duration_s"
        )
    duration = data.get("duration_s")
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or not 0 < duration <= 30 * 24 * 3600
    ):
        raise InvalidInput(f"shadow duration_s is a number of seconds above 0, not {duration!r}")
    return {"duration_s": duration}


def _canary_backends(stable: str, candidate: str, weight: float) -> list[Backend]:
    if weight >= 100:
        return [backend(candidate, 100.0, Role.CANDIDATE), backend(stable, 0.0, Role.STANDBY)]
    return [
        backend(stable, 100.0 - weight, Role.STABLE),
        backend(candidate, weight, Role.CANDIDATE),
    ]


def start(
    dep: Deployment,
    candidate: Key,
    strategy: Strategy,
    config: Mapping[str, Any] | None,
    now: int,
    variants: tuple[Key, ...] = (),
) -> Change:
    """Return the first step of a rollout of ``candidate`` (``Conflict`` if one is running).

    ``variants`` are an A/B test's further variants (resolved from ``config["variants"]``).
    """
    if dep.rollout is not None and dep.rollout.running:
        raise Conflict(
            f"deployment {dep.name!r} already has a {dep.rollout.strategy.value} rollout of "
            f"{dep.rollout.candidate} running; promote, abort or roll it back first"
        )
    stable, new = dep.stable.key, version_key(*candidate)
    if new == stable:
        raise Conflict(f"{new} is already the stable version of deployment {dep.name!r}")
    extra: dict[str, Any] = {}
    if strategy is Strategy.BLUE_GREEN:
        if config:
            raise InvalidInput(f"blue-green takes no options, not {sorted(config)}")
        settings: dict[str, Any] = {}
        backends = [backend(stable, 100.0, Role.STABLE), backend(new, 0.0, Role.STANDBY)]
        reason = f"blue-green: warming {new} beside {stable}"
    elif strategy is Strategy.CANARY:
        canary = CanaryConfig.parse(config)
        settings = canary.to_dict()
        backends = _canary_backends(stable, new, canary.steps[0])
        reason = f"canary of {new}: step 1/{len(canary.steps)} at {canary.steps[0]:g}%"
    elif strategy is Strategy.AB:
        ab = ABConfig.parse(config)
        keys = [stable, new, *(version_key(*v) for v in variants)]
        if len(set(keys)) != len(keys) or len(keys) != len(ab.weights):
            raise InvalidInput(f"A/B variants must be distinct versions: {keys}")
        roles = [Role.STABLE, Role.CANDIDATE] + [Role.VARIANT] * len(variants)
        backends = [backend(k, w, r) for k, w, r in zip(keys, ab.weights, roles, strict=True)]
        settings = {**ab.to_dict(), "keys": keys}
        extra["sticky_key"] = ab.sticky_key
        split = ", ".join(f"{k} {w:g}%" for k, w in zip(keys, ab.weights, strict=True))
        reason = f"A/B test by {ab.sticky_key!r}: {split}"
    else:
        settings = _shadow_config(config)
        backends = [backend(stable, 100.0, Role.STABLE)]
        extra["shadow"] = backend(new, 0.0, Role.SHADOW)
        reason = f"shadow: mirroring {stable}'s traffic to {new}"
    rollout = Rollout(dep.revision + 1, strategy, stable, new, settings, 0, now)
    return Change(next_plan(dep, backends, **extra), rollout, f"rollout.{strategy.value}", reason)


def step(dep: Deployment, stats: Mapping[str, BackendStats], now: int) -> Change | None:
    """Return the running rollout's next change if its step is due, else None.

    Call it only once the current plan has been applied: blue-green's step 0 is "the
    candidate is warm", due at once.
    """
    rollout = dep.rollout
    if rollout is None or not rollout.running:
        return None
    elapsed = (now - rollout.step_started_at) / 1000
    if rollout.strategy is Strategy.BLUE_GREEN:
        why = f"blue-green: {rollout.candidate} warm and healthy, switched 100% to it"
        return promote(dep, now, why=why)
    if rollout.strategy is Strategy.SHADOW:
        duration = rollout.config.get("duration_s")
        if duration is None or elapsed < duration:
            return None
        return abort(
            dep, now, stats, why=f"shadow of {rollout.candidate} ended after {duration:g} s"
        )
    if rollout.strategy is Strategy.CANARY:
        if rollout.summary.get("paused"):
            return None  # held by pause(): no step, no gate, until resume()
        return _canary_step(dep, rollout, stats, now, elapsed)
    return None  # an A/B test ends by hand


def _canary_step(
    dep: Deployment,
    rollout: Rollout,
    stats: Mapping[str, BackendStats],
    now: int,
    elapsed: float,
) -> Change | None:
    config = CanaryConfig.parse(rollout.config)
    if elapsed < config.interval_s:
        return None
    gate = config.gate
    result = evaluate_gate(
        gate,
        stats.get(rollout.candidate),
        stats.get(rollout.stable),
        rollout.summary.get("baseline"),
    )
    steps = len(config.steps)
    where = f"step {rollout.step + 1}/{steps}"
    passed = result.passed
    if passed is None:
        if elapsed < config.interval_s * (1 + gate.max_wait):
            return None
        if gate.on_no_traffic == "fail":
            short = "; ".join(result.reasons)
            why = f"gate failed at {where}: not enough data after {elapsed:.0f} s ({short})"
            return rollback(dep, now, why=why)
        passed = True
    if not passed:
        return rollback(dep, now, why=f"gate failed at {where}: {'; '.join(result.reasons)}")
    summary = {
        "baseline": result.figures["stable"] or rollout.summary.get("baseline"),
        "last_gate": {"step": rollout.step, "passed": True, "figures": dict(result.figures)},
    }
    if rollout.step + 1 >= steps:
        why = f"canary passed all {steps} steps: promoted {rollout.candidate}"
        return promote(dep, now, why=why)
    weight = config.steps[rollout.step + 1]
    nxt = replace(rollout, step=rollout.step + 1, step_started_at=now, summary=summary)
    plan = next_plan(dep, _canary_backends(rollout.stable, rollout.candidate, weight))
    why = f"gate passed at {where}: canary to {weight:g}% (step {rollout.step + 2}/{steps})"
    return Change(plan, nxt, "canary.step", why)
