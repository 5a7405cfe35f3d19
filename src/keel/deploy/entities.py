"""What the deployments control plane stores and returns: deployments, rollouts, history.

A :class:`Deployment` is a named endpoint in an environment; its current
:class:`~keel.deploy.traffic.TrafficPlan` says where requests go, and its revision counts
every traffic change. A :class:`Rollout` is the strategy in progress (or the last one):
blue-green, canary, A/B test or shadow, with its configuration, current step and status.
Every change is one :class:`HistoryEntry`. Plans travel as JSON through
:func:`plan_to_dict` and :func:`plan_from_dict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from keel.deploy.traffic import Backend, Role, TrafficPlan
from keel.errors import InvalidInput

__all__ = [
    "Deployment",
    "HistoryEntry",
    "Outcome",
    "Rollout",
    "RolloutStatus",
    "Strategy",
    "check_deployment_name",
    "check_environment",
    "plan_from_dict",
    "plan_to_dict",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENVIRONMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Strategy(StrEnum):
    """How a new version reaches traffic."""

    BLUE_GREEN = "blue-green"
    CANARY = "canary"
    AB = "ab"
    SHADOW = "shadow"


class RolloutStatus(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    PROMOTED = "promoted"  # the candidate became stable
    ROLLED_BACK = "rolled-back"  # a gate failed, or a rollback ended it
    ABORTED = "aborted"  # stopped by hand, stable unchanged
    FAILED = "failed"  # the data plane could not load or warm the candidate
    ENDED = "ended"  # a shadow or A/B test finished without a promotion


def check_deployment_name(name: object) -> str:
    """Return a valid deployment name: a letter or digit, then letters, digits, . _ - (128)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"deployment name {name!r} must start with a letter or digit and contain only "
            "letters, digits, '.', '_' and '-' (at most 128 characters), e.g. churn-prod"
        )
    return name


def check_environment(environment: object) -> str:
    """Return a valid environment name (like a deployment name, at most 64 characters)."""
    if not isinstance(environment, str) or not _ENVIRONMENT.fullmatch(environment):
        raise InvalidInput(
            f"environment {environment!r} must start with a letter or digit and contain only "
            "letters, digits, '.', '_' and '-' (at most 64 characters), e.g. prod or staging"
        )
    return environment


@dataclass(frozen=True)
class Rollout:
    """A strategy applied to a deployment: its candidate, configuration, step and status.

    ``id`` is the deployment revision the rollout started at (A/B outcomes are kept per
    rollout). ``stable`` and ``candidate`` are backend keys (``model/version``); ``config``
    is the strategy's configuration as JSON; ``step_started_at`` is epoch milliseconds.
    ``summary`` keeps what the rollout measured (a canary's last gate figures and stable
    baseline, a shadow's agreement when it ended).
    """

    id: int
    strategy: Strategy
    stable: str
    candidate: str
    config: Mapping[str, Any]
    step: int
    step_started_at: int
    status: RolloutStatus = RolloutStatus.RUNNING
    reason: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        """True while the rollout is in progress."""
        return self.status is RolloutStatus.RUNNING

    def to_dict(self) -> dict[str, Any]:
        """Return the rollout as plain JSON-ready data."""
        return {
            "id": self.id,
            "strategy": self.strategy.value,
            "stable": self.stable,
            "candidate": self.candidate,
            "config": dict(self.config),
            "step": self.step,
            "step_started_at": self.step_started_at,
            "status": self.status.value,
            "reason": self.reason,
            "summary": dict(self.summary),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rollout:
        """Return the rollout ``to_dict`` wrote."""
        return cls(
            id=int(data["id"]),
            strategy=Strategy(data["strategy"]),
            stable=str(data["stable"]),
            candidate=str(data["candidate"]),
            config=dict(data.get("config") or {}),
            step=int(data["step"]),
            step_started_at=int(data["step_started_at"]),
            status=RolloutStatus(data.get("status", "running")),
            reason=data.get("reason"),
            summary=dict(data.get("summary") or {}),
        )


@dataclass(frozen=True)
class Deployment:
    """A named endpoint, its current traffic plan, and its rollout (if it ever had one)."""

    name: str
    environment: str
    description: str | None
    plan: TrafficPlan
    rollout: Rollout | None
    created_at: int
    updated_at: int
    created_by: str

    @property
    def revision(self) -> int:
        """Return the revision of the current plan (one more per traffic change)."""
        return self.plan.revision

    @property
    def stable(self) -> Backend:
        """Return the stable backend (the one with the largest weight if none is marked)."""
        for backend in self.plan.backends:
            if backend.role is Role.STABLE and backend.weight > 0:
                return backend
        return max(self.plan.live, key=lambda b: b.weight)

    @property
    def status(self) -> str:
        """Return "serving", or the running rollout as e.g. "canary step 2/4"."""
        rollout = self.rollout
        if rollout is None or not rollout.running:
            return "serving"
        if rollout.strategy is Strategy.CANARY:
            steps = rollout.config.get("steps") or []
            return f"canary step {rollout.step + 1}/{len(steps)}"
        if rollout.strategy is Strategy.BLUE_GREEN:
            return "blue-green warming"
        return "A/B testing" if rollout.strategy is Strategy.AB else "shadowing"

    def to_dict(self) -> dict[str, Any]:
        """Return the deployment as plain JSON-ready data."""
        return {
            "name": self.name,
            "environment": self.environment,
            "description": self.description,
            "revision": self.revision,
            "status": self.status,
            "plan": plan_to_dict(self.plan),
            "rollout": None if self.rollout is None else self.rollout.to_dict(),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deployment:
        """Return the deployment ``to_dict`` wrote."""
        rollout = data.get("rollout")
        return cls(
            name=data["name"],
            environment=data["environment"],
            description=data.get("description"),
            plan=plan_from_dict(data["plan"]),
            rollout=None if rollout is None else Rollout.from_dict(rollout),
            created_at=int(data["created_at"]),
            updated_at=int(data["updated_at"]),
            created_by=data["created_by"],
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One traffic change of a deployment: who, when, what, the resulting plan, and why."""

    deployment: str
    revision: int
    at: int
    actor: str
    action: str
    plan: TrafficPlan
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as plain JSON-ready data."""
        return {
            "deployment": self.deployment,
            "revision": self.revision,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "plan": plan_to_dict(self.plan),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        """Return the entry ``to_dict`` wrote."""
        return cls(
            deployment=data["deployment"],
            revision=int(data["revision"]),
            at=int(data["at"]),
            actor=data["actor"],
            action=data["action"],
            plan=plan_from_dict(data["plan"]),
            reason=data.get("reason"),
        )


@dataclass(frozen=True)
class Outcome:
    """One A/B outcome: its value, and the variant (a backend key) or the request key.

    Give ``variant`` when the caller knows which variant answered; otherwise give
    ``request_key`` and the variant is recomputed with the test's sticky hashing.
    Binary outcomes are 0 or 1 (converted or not); continuous ones any finite number.
    """

    value: float
    variant: str | None = None
    request_key: str | None = None


def _backend_to_dict(backend: Backend) -> dict[str, Any]:
    return {
        "model": backend.model,
        "version": backend.version,
        "weight": backend.weight,
        "role": backend.role.value,
    }


def _backend_from(data: Mapping[str, Any]) -> Backend:
    return Backend(
        model=str(data["model"]),
        version=int(data["version"]),
        weight=float(data["weight"]),
        role=Role(data.get("role", "stable")),
    )


def plan_to_dict(plan: TrafficPlan) -> dict[str, Any]:
    """Return a traffic plan as JSON-ready data."""
    return {
        "deployment": plan.deployment,
        "revision": plan.revision,
        "backends": [_backend_to_dict(b) for b in plan.backends],
        "shadow": None if plan.shadow is None else _backend_to_dict(plan.shadow),
        "sticky_key": plan.sticky_key,
    }


def plan_from_dict(data: Mapping[str, Any]) -> TrafficPlan:
    """Return the traffic plan ``plan_to_dict`` wrote (checked again on the way in)."""
    try:
        shadow = data.get("shadow")
        return TrafficPlan(
            deployment=str(data["deployment"]),
            revision=int(data["revision"]),
            backends=tuple(_backend_from(b) for b in data["backends"]),
            shadow=None if shadow is None else _backend_from(shadow),
            sticky_key=data.get("sticky_key"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"not a traffic plan: {exc}") from None
