"""The pure state machine of a deployment: each operation's new plan, rollout and reason.

Nothing here reads or writes a store: a function takes the deployment as it stands (and
the versions the store resolved, the clock, the live figures) and returns a
:class:`Change` — the next plan at the next revision, the rollout after it, the action
and the reason the history records. Stores persist a ``Change``; the controller applies
its plan.

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
from dataclasses import dataclass, replace
from typing import Any

from keel.deploy.analysis import ABConfig
from keel.deploy.canary import CanaryConfig, evaluate_gate
from keel.deploy.entities import Deployment, Rollout, RolloutStatus, Strategy
from keel.deploy.traffic import Backend, BackendStats, Role, TrafficPlan
from keel.errors import Conflict, InvalidInput

__all__ = [
    "Change",
    "abort",
    "create_plan",
    "fail",
    "parse_strategy",
    "promote",
    "rollback",
    "set_traffic",
    "shadow_summary",
    "start",
    "step",
]

Key = tuple[str, int]  # (model, version)


@dataclass(frozen=True)
class Change:
    """One transition: the plan to serve next, the rollout after it, and why."""

    plan: TrafficPlan
    rollout: Rollout | None
    action: str
    reason: str | None


def _key(model: str, version: int) -> str:
    return f"{model}/{version}"


def _split(key: str) -> Key:
    model, _, version = key.rpartition("/")
    return model, int(version)


def _backend(key: str, weight: float, role: Role) -> Backend:
    model, version = _split(key)
    return Backend(model, version, weight, role)


def _plan(dep: Deployment, backends: list[Backend], **extra: Any) -> TrafficPlan:
    return TrafficPlan(dep.name, dep.revision + 1, tuple(backends), **extra)


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
        return [_backend(candidate, 100.0, Role.CANDIDATE), _backend(stable, 0.0, Role.STANDBY)]
    return [
        _backend(stable, 100.0 - weight, Role.STABLE),
        _backend(candidate, weight, Role.CANDIDATE),
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
    stable, new = dep.stable.key, _key(*candidate)
    if new == stable:
        raise Conflict(f"{new} is already the stable version of deployment {dep.name!r}")
    extra: dict[str, Any] = {}
    if strategy is Strategy.BLUE_GREEN:
        if config:
            raise InvalidInput(f"blue-green takes no options, not {sorted(config)}")
        settings: dict[str, Any] = {}
        backends = [_backend(stable, 100.0, Role.STABLE), _backend(new, 0.0, Role.STANDBY)]
        reason = f"blue-green: warming {new} beside {stable}"
    elif strategy is Strategy.CANARY:
        canary = CanaryConfig.parse(config)
        settings = canary.to_dict()
        backends = _canary_backends(stable, new, canary.steps[0])
        reason = f"canary of {new}: step 1/{len(canary.steps)} at {canary.steps[0]:g}%"
    elif strategy is Strategy.AB:
        ab = ABConfig.parse(config)
        keys = [stable, new, *(_key(*v) for v in variants)]
        if len(set(keys)) != len(keys) or len(keys) != len(ab.weights):
            raise InvalidInput(f"A/B variants must be distinct versions: {keys}")
        roles = [Role.STABLE, Role.CANDIDATE] + [Role.VARIANT] * len(variants)
        backends = [_backend(k, w, r) for k, w, r in zip(keys, ab.weights, roles, strict=True)]
        settings = {**ab.to_dict(), "keys": keys}
        extra["sticky_key"] = ab.sticky_key
        split = ", ".join(f"{k} {w:g}%" for k, w in zip(keys, ab.weights, strict=True))
        reason = f"A/B test by {ab.sticky_key!r}: {split}"
    else:
        settings = _shadow_config(config)
        backends = [_backend(stable, 100.0, Role.STABLE)]
        extra["shadow"] = _backend(new, 0.0, Role.SHADOW)
        reason = f"shadow: mirroring {stable}'s traffic to {new}"
    rollout = Rollout(dep.revision + 1, strategy, stable, new, settings, 0, now)
    return Change(_plan(dep, backends, **extra), rollout, f"rollout.{strategy.value}", reason)


def _running(dep: Deployment, doing: str) -> Rollout:
    if dep.rollout is None or not dep.rollout.running:
        raise Conflict(f"deployment {dep.name!r} has no rollout running to {doing}")
    return dep.rollout


def _back_to_stable(dep: Deployment, rollout: Rollout) -> TrafficPlan:
    return _plan(dep, [_backend(rollout.stable, 100.0, Role.STABLE)])


def shadow_summary(rollout: Rollout, stats: Mapping[str, BackendStats] | None) -> dict[str, Any]:
    """Return what a shadow measured (its figures and agreement) for the rollout's summary."""
    figures = (stats or {}).get(rollout.candidate)
    if figures is None:
        return {**rollout.summary, "shadow": {"requests": 0, "agreement": None}}
    return {
        **rollout.summary,
        "shadow": {
            "requests": figures.requests,
            "errors": figures.errors,
            "error_rate": figures.error_rate,
            "p99_ms": figures.p99_ms,
            "agreement": figures.extra.get("agreement"),
        },
    }


def _ended(
    rollout: Rollout,
    status: RolloutStatus,
    reason: str,
    stats: Mapping[str, BackendStats] | None,
) -> Rollout:
    summary = shadow_summary(rollout, stats) if rollout.strategy is Strategy.SHADOW else None
    return replace(rollout, status=status, reason=reason, summary=summary or rollout.summary)


def promote(
    dep: Deployment,
    now: int,
    to: str | None = None,
    stats: Mapping[str, BackendStats] | None = None,
    why: str | None = None,
) -> Change:
    """Return the change making the candidate (or A/B variant ``to``) stable at 100%."""
    rollout = _running(dep, "promote")
    choices = list(rollout.config.get("keys") or [rollout.candidate])
    target = to or rollout.candidate
    if target not in choices:
        raise InvalidInput(f"cannot promote {target}: the rollout's versions are {choices}")
    if target == rollout.stable:
        return abort(dep, now, stats, why=why or f"A/B test ended: {target} stays stable")
    plan = _plan(
        dep, [_backend(target, 100.0, Role.STABLE), _backend(rollout.stable, 0.0, Role.STANDBY)]
    )
    reason = why or f"promoted {target}; {rollout.stable} kept warm as standby"
    return Change(plan, _ended(rollout, RolloutStatus.PROMOTED, reason, stats), "promote", reason)


def abort(
    dep: Deployment,
    now: int,
    stats: Mapping[str, BackendStats] | None = None,
    why: str | None = None,
) -> Change:
    """Return the change stopping the running rollout: 100% back to its stable version."""
    rollout = _running(dep, "abort")
    ending = RolloutStatus.ENDED if rollout.strategy in (Strategy.SHADOW, Strategy.AB) else None
    reason = why or f"aborted the {rollout.strategy.value} rollout of {rollout.candidate}"
    ended = _ended(rollout, ending or RolloutStatus.ABORTED, reason, stats)
    return Change(_back_to_stable(dep, rollout), ended, "abort", reason)


def _same_plan(dep: Deployment) -> TrafficPlan:
    plan = dep.plan
    return TrafficPlan(dep.name, dep.revision + 1, plan.backends, plan.shadow, plan.sticky_key)


def pause(dep: Deployment, now: int, why: str | None = None) -> Change:
    """Return the change holding the running canary at its current step: traffic stays as
    it is and no gate is judged until ``resume``; ``Conflict`` if it is paused already or
    the rollout is not a canary."""
    rollout = _running(dep, "pause")
    if rollout.strategy is not Strategy.CANARY:
        raise Conflict(
            f"deployment {dep.name!r} runs a {rollout.strategy.value} rollout; only a "
            "canary's steps can be paused (abort it instead)"
        )
    if rollout.summary.get("paused"):
        raise Conflict(f"the canary of deployment {dep.name!r} is paused already")
    reason = why or f"paused the canary of {rollout.candidate} at step {rollout.step + 1}"
    paused = {**rollout.summary, "paused": {"at": now, "reason": reason}}
    return Change(_same_plan(dep), replace(rollout, summary=paused), "pause", reason)


def resume(dep: Deployment, now: int) -> Change:
    """Return the change resuming a paused canary: its current step starts again now, so
    its gate is judged on traffic from here on; ``Conflict`` if it is not paused."""
    rollout = _running(dep, "resume")
    if not rollout.summary.get("paused"):
        raise Conflict(f"deployment {dep.name!r} has no paused canary to resume")
    summary = {k: v for k, v in rollout.summary.items() if k != "paused"}
    resumed = replace(rollout, summary=summary, step_started_at=now)
    reason = f"resumed the canary of {rollout.candidate} at step {rollout.step + 1}"
    return Change(_same_plan(dep), resumed, "resume", reason)


def fail(dep: Deployment, serving: TrafficPlan, why: str) -> Change:
    """Return the change recording that the data plane refused the current plan.

    A running rollout fails (100% to its stable version); otherwise the plan still serving
    (``serving``) is recorded again at the next revision.
    """
    rollout = dep.rollout
    if rollout is not None and rollout.running:
        ended = replace(rollout, status=RolloutStatus.FAILED, reason=why)
        return Change(_back_to_stable(dep, rollout), ended, "failed", why)
    plan = TrafficPlan(
        dep.name, dep.revision + 1, serving.backends, serving.shadow, serving.sticky_key
    )
    return Change(plan, rollout, "failed", why)


def rollback(
    dep: Deployment,
    now: int,
    to: Key | None = None,
    previous: str | None = None,
    stats: Mapping[str, BackendStats] | None = None,
    why: str | None = None,
) -> Change:
    """Return the change sending 100% to ``to``, else back to the version before.

    "Before" is the running rollout's stable version, else the plan's standby, else
    ``previous`` (the store finds the last other stable version in the history). The
    version left is kept warm as standby; a running rollout ends rolled back.
    """
    rollout = dep.rollout if dep.rollout is not None and dep.rollout.running else None
    current = dep.stable.key
    if to is not None:
        target = _key(*to)
    elif rollout is not None:
        target = rollout.stable
    else:
        standby = [b.key for b in dep.plan.backends if b.role is Role.STANDBY]
        target = standby[0] if standby else previous  # type: ignore[assignment]
    if target is None:
        raise Conflict(
            f"deployment {dep.name!r} has no previous version to roll back to; "
            "name one with --to models:/<name>/<version>"
        )
    warm = target in {b.key for b in dep.plan.all_backends()}
    if target == current and rollout is None:
        raise Conflict(f"{target} is already serving deployment {dep.name!r}")
    backends = [_backend(target, 100.0, Role.STABLE)]
    if current != target and (rollout is None or current == rollout.stable):
        backends.append(_backend(current, 0.0, Role.STANDBY))
    how = "instant: it was warm" if warm else "loaded first: it was not warm"
    reason = why or f"rolled back to {target} ({how})"
    ended = None if rollout is None else _ended(rollout, RolloutStatus.ROLLED_BACK, reason, stats)
    return Change(_plan(dep, backends), ended or dep.rollout, "rollback", reason)


def set_traffic(dep: Deployment, weights: Mapping[str, float]) -> Change:
    """Return a manual split (``weights`` by backend key, in percent, summing to 100).

    Versions of the current plan left out stay loaded as standby.
    """
    if dep.rollout is not None and dep.rollout.running:
        raise Conflict(
            f"deployment {dep.name!r} has a {dep.rollout.strategy.value} rollout running; "
            "abort or promote it before setting traffic by hand"
        )
    if not weights:
        raise InvalidInput("set at least one version's traffic weight")
    live = {k: w for k, w in weights.items() if w > 0}
    current = dep.stable.key
    stable = current if current in live else max(live, key=lambda k: live[k], default=None)
    backends = []
    for key, weight in weights.items():
        role = Role.STABLE if key == stable else Role.VARIANT if weight > 0 else Role.STANDBY
        backends.append(_backend(key, float(weight), role))
    for backend in dep.plan.backends:
        if backend.key not in weights:
            backends.append(replace(backend, weight=0.0, role=Role.STANDBY))
    split = ", ".join(f"{k} {w:g}%" for k, w in weights.items() if w > 0)
    return Change(_plan(dep, backends), dep.rollout, "traffic", f"traffic set by hand: {split}")


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
    plan = _plan(dep, _canary_backends(rollout.stable, rollout.candidate, weight))
    why = f"gate passed at {where}: canary to {weight:g}% (step {rollout.step + 2}/{steps})"
    return Change(plan, nxt, "canary.step", why)
