"""What promotions return: each gate's result, approvals, and a promotion with its outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["OUTCOMES", "Approval", "GateResult", "PromotionResult"]

# promoted: gates passed, alias moved (and rollout started); refused: a gate failed;
# dry-run: gates evaluated only; failed: gates passed but the move or rollout failed
OUTCOMES = ("promoted", "refused", "dry-run", "failed")


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: its kind ("metric", "champion", "approvals", "deployment"),
    what it checked, whether it passed, why, and the figures it used."""

    kind: str
    name: str
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this result."""
        return {
            "kind": self.kind,
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        """Return the result ``to_dict`` made."""
        return cls(
            str(data["kind"]),
            str(data["name"]),
            bool(data["passed"]),
            str(data["reason"]),
            dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class Approval:
    """One approval of a model version for an environment."""

    model: str
    version: int
    environment: str
    approver: str
    role: str | None  # the approver's role when a server with auth on checked it
    comment: str | None
    at: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this approval."""
        return {
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "approver": self.approver,
            "role": self.role,
            "comment": self.comment,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Approval:
        """Return the approval ``to_dict`` made."""
        return cls(
            str(data["model"]),
            int(data["version"]),
            str(data["environment"]),
            str(data["approver"]),
            data.get("role"),
            data.get("comment"),
            int(data["at"]),
        )


@dataclass(frozen=True)
class PromotionResult:
    """One promotion attempt of ``model/version`` into ``environment``: every gate's
    result, the alias move (``previous_version`` → ``version``) and the deployment
    rollout it started (``rollout``: action, strategy, revision, status), or why not."""

    promotion_id: str
    model: str
    version: int
    environment: str
    alias: str
    outcome: str
    dry_run: bool
    previous_version: int | None
    gates: tuple[GateResult, ...]
    deployment: str | None
    rollout: dict[str, Any] | None
    reason: str
    actor: str
    at: int

    @property
    def passed(self) -> bool:
        """True when every gate passed."""
        return all(g.passed for g in self.gates)

    @property
    def promoted(self) -> bool:
        """True when the alias was moved."""
        return self.outcome == "promoted"

    @property
    def reasons(self) -> list[str]:
        """The reasons of the gates that failed (empty when all passed)."""
        return [g.reason for g in self.gates if not g.passed]

    @property
    def uri(self) -> str:
        """The ``models:/name/version`` URI of the promoted version."""
        return f"models:/{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this promotion."""
        return {
            "promotion_id": self.promotion_id,
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "alias": self.alias,
            "outcome": self.outcome,
            "passed": self.passed,
            "dry_run": self.dry_run,
            "previous_version": self.previous_version,
            "gates": [g.to_dict() for g in self.gates],
            "reasons": self.reasons,
            "deployment": self.deployment,
            "rollout": self.rollout,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromotionResult:
        """Return the promotion ``to_dict`` made."""
        previous = data.get("previous_version")
        return cls(
            promotion_id=str(data["promotion_id"]),
            model=str(data["model"]),
            version=int(data["version"]),
            environment=str(data["environment"]),
            alias=str(data["alias"]),
            outcome=str(data["outcome"]),
            dry_run=bool(data["dry_run"]),
            previous_version=None if previous is None else int(previous),
            gates=tuple(GateResult.from_dict(g) for g in data.get("gates") or ()),
            deployment=data.get("deployment"),
            rollout=data.get("rollout"),
            reason=str(data.get("reason") or ""),
            actor=str(data.get("actor") or ""),
            at=int(data.get("at") or 0),
        )
