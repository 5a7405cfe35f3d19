"""The deployments store interface: every backend (SQL, REST) implements exactly this.

Each operation reads the deployment, decides the new traffic plan with the pure strategy
logic (``keel.deploy.transitions``), and saves it as one new revision with a history
entry and an audit entry, in one transaction. Model versions are named by URI
(``models:/churn/3``, ``models:/churn@champion``, ``models:/churn/latest``) or by backend
key (``churn/3``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from keel.deploy.analysis import ABAnalysis
from keel.deploy.entities import Deployment, HistoryEntry, Outcome
from keel.errors import InvalidInput

__all__ = ["DEFAULT_HISTORY", "MAX_HISTORY", "DeploymentStore", "check_limit", "check_weights"]

DEFAULT_HISTORY = 100
MAX_HISTORY = 10_000


def check_limit(limit: object) -> int:
    """Return a valid history limit (1..``MAX_HISTORY``); ``InvalidInput`` otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_HISTORY}, not {limit!r}")
    return limit


def check_weights(weights: object) -> dict[str, float]:
    """Return a traffic split (1 to 16 versions, each 0..100); ``InvalidInput`` otherwise."""
    if not isinstance(weights, Mapping) or not weights or len(weights) > 16:
        raise InvalidInput("traffic weights map 1 to 16 versions to percentages")
    out: dict[str, float] = {}
    for ref, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise InvalidInput(f"the weight of {ref!r} must be a number, not {weight!r}")
        if not math.isfinite(weight) or not 0 <= weight <= 100:
            raise InvalidInput(f"the weight of {ref!r} must be 0..100, not {weight!r}")
        out[ref] = float(weight)
    return out


class DeploymentStore(ABC):
    """Deployments, their traffic changes, rollouts and A/B outcomes."""

    @abstractmethod
    def create_deployment(
        self,
        name: str,
        model: str,
        *,
        environment: str = "default",
        description: str | None = None,
    ) -> Deployment:
        """Return a new deployment sending all traffic to ``model``; ``AlreadyExists`` if
        the name is taken, ``NotFound`` if the version is not registered."""

    @abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """Return one deployment; ``NotFound`` otherwise."""

    @abstractmethod
    def list_deployments(self, *, environment: str | None = None) -> list[Deployment]:
        """Return every deployment (of one environment if given), by name."""

    @abstractmethod
    def delete_deployment(self, name: str) -> None:
        """Delete a deployment with its history and outcomes (the audit log keeps them)."""

    @abstractmethod
    def deployment_history(self, name: str, *, limit: int = DEFAULT_HISTORY) -> list[HistoryEntry]:
        """Return the latest ``limit`` traffic changes of a deployment, oldest first."""

    @abstractmethod
    def start_rollout(
        self,
        name: str,
        model: str,
        *,
        strategy: str = "blue-green",
        config: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Return the deployment with a new rollout of ``model`` by ``strategy`` started;
        ``Conflict`` if one is already running."""

    @abstractmethod
    def set_traffic(self, name: str, weights: Mapping[str, float]) -> Deployment:
        """Return the deployment after splitting traffic by hand (weights in percent,
        summing to 100; backends left out stay warm as standby)."""

    @abstractmethod
    def promote(self, name: str, *, to: str | None = None) -> Deployment:
        """Return the deployment after making the rollout's candidate (or ``to``, an A/B
        variant) stable with 100%, the old stable kept warm as standby."""

    @abstractmethod
    def rollback(self, name: str, *, to: str | None = None) -> Deployment:
        """Return the deployment after sending 100% back to the previous stable version
        (or ``to``); ends a running rollout. Instant where that version is warm."""

    @abstractmethod
    def abort(self, name: str) -> Deployment:
        """Return the deployment after stopping its running rollout (100% to the stable
        version it started from); ``Conflict`` if none is running."""

    @abstractmethod
    def pause(self, name: str) -> Deployment:
        """Return the deployment with its running canary held at its current step (traffic
        as it is, no gate judged); ``Conflict`` if no canary is running."""

    @abstractmethod
    def resume(self, name: str) -> Deployment:
        """Return the deployment with its paused canary going on (the step restarts now)."""

    @abstractmethod
    def record_outcomes(self, name: str, outcomes: Sequence[Outcome]) -> int:
        """Return how many outcomes were recorded for the running A/B test."""

    @abstractmethod
    def ab_analysis(self, name: str) -> ABAnalysis:
        """Return the significance analysis of the deployment's (latest) A/B test."""
