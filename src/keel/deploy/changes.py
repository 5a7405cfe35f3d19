"""A deployment's :class:`Change`, and the transitions that end, hold or override a rollout.

A ``Change`` is one transition's value: the next plan at the next revision, the rollout
after it, the action and the reason the history records. The functions here apply to a
deployment whatever its strategy: promote, abort, roll back or fail a rollout, pause and
resume a canary, set traffic by hand. Starting a rollout and stepping it on (per strategy)
is ``keel.deploy.transitions``, which re-exports these; the building blocks both use
(``version_key``, ``backend``, ``next_plan``) live here, below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from keel.deploy.entities import Deployment, Rollout, RolloutStatus, Strategy
from keel.deploy.traffic import Backend, BackendStats, Role, TrafficPlan
from keel.errors import Conflict, InvalidInput

__all__ = [
    "Change",
    "Key",
    "abort",
    "backend",
    "fail",
    "next_plan",
    "pause",
    "promote",
    "resume",
    "rollback",
    "set_traffic",
    "shadow_summary",
    "version_key",
]

Key = tuple[str, int]  # (model, version)


@dataclass(frozen=True)
class Change:
    """One transition: the plan to serve next, the rollout after it, and why."""

    plan: TrafficPlan
    rollout: Rollout | None
    action: str
    reason: str | None


def version_key(model: str, version: int) -> str:
    """Return the ``model/version`` key a plan's backends and a rollout's versions use."""
    return f"{model}/{version}"


def _split(key: str) -> Key:
    model, _, version = key.rpartition("/")
    return model, int(version)


def backend(key: str, weight: float, role: Role) -> Backend:
    """Return the backend serving ``key`` (``model/version``) at ``weight`` percent."""
    model, version = _split(key)
    return Backend(model, version, weight, role)


def next_plan(dep: Deployment, backends: list[Backend], **extra: Any) -> TrafficPlan:
    """Return the plan of ``backends`` at the deployment's next revision."""
    return TrafficPlan(dep.name, dep.revision + 1, tuple(backends), **extra)


def _running(dep: Deployment, doing: str) -> Rollout:
    if dep.rollout is None or not dep.rollout.running:
        raise Conflict(f"deployment {dep.name!r} has no rollout running to {doing}")
    return dep.rollout


def _back_to_stable(dep: Deployment, rollout: Rollout) -> TrafficPlan:
    return next_plan(dep, [backend(rollout.stable, 100.0, Role.STABLE)])


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
    plan = next_plan(
        dep, [backend(target, 100.0, Role.STABLE), backend(rollout.stable, 0.0, Role.STANDBY)]
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
        target = version_key(*to)
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
    backends = [backend(target, 100.0, Role.STABLE)]
    if current != target and (rollout is None or current == rollout.stable):
        backends.append(backend(current, 0.0, Role.STANDBY))
    how = "instant: it was warm" if warm else "loaded first: it was not warm"
    reason = why or f"rolled back to {target} ({how})"
    ended = None if rollout is None else _ended(rollout, RolloutStatus.ROLLED_BACK, reason, stats)
    return Change(next_plan(dep, backends), ended or dep.rollout, "rollback", reason)


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
        backends.append(backend(key, float(weight), role))
    for left_out in dep.plan.backends:
        if left_out.key not in weights:
            backends.append(replace(left_out, weight=0.0, role=Role.STANDBY))
    split = ", ".join(f"{k} {w:g}%" for k, w in weights.items() if w > 0)
    return Change(next_plan(dep, backends), dep.rollout, "traffic", f"traffic set by hand: {split}")
