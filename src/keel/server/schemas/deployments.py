"""Request and response bodies of the deployments API (/api/v1/deployments…).

Bounds mirror the tables (names 128, environments 64, variant keys 300) and the store's
limits (16 backends per split, 10,000 outcomes per call), so anything that could not be
stored is a 400 here. Strategy options (``config``) are checked by the strategy itself,
which names the option that is wrong.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from keel.server.schemas.json_values import StorableJson

__all__ = [
    "AnalysisOut",
    "DeploymentIn",
    "DeploymentListOut",
    "DeploymentOut",
    "HistoryOut",
    "OutcomesIn",
    "OutcomesOut",
    "ReloadOut",
    "RolloutIn",
    "StatsOut",
    "TargetIn",
    "TrafficIn",
]

Ref = Annotated[StrictStr, Field(min_length=1, max_length=600, description="models:/name/3")]
Number = StrictFloat | StrictInt


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentIn(_Body):
    """POST /deployments: a new deployment serving one version."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    model: Ref
    environment: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "default"
    description: Annotated[StrictStr, Field(max_length=10_000)] | None = None


class RolloutIn(_Body):
    """POST …/rollouts: roll ``model`` out by ``strategy`` with its options."""

    model: Ref
    strategy: Annotated[StrictStr, Field(max_length=32)] = "blue-green"
    config: Annotated[dict[str, StorableJson], Field(max_length=64)] | None = None


class TrafficIn(_Body):
    """PUT …/traffic: percent of live traffic per version (summing to 100)."""

    weights: Annotated[dict[Ref, Number], Field(min_length=1, max_length=16)]


class TargetIn(_Body):
    """POST …/promote or …/rollback: the version to promote or roll back to (optional)."""

    to: Ref | None = None


class OutcomeIn(_Body):
    """One A/B outcome: its value and its variant or request key."""

    value: Number
    variant: Annotated[StrictStr, Field(min_length=1, max_length=300)] | None = None
    request_key: Annotated[StrictStr, Field(max_length=256)] | None = None


class OutcomesIn(_Body):
    """POST …/outcomes: up to 10,000 outcomes of the running A/B test."""

    outcomes: Annotated[list[OutcomeIn], Field(min_length=1, max_length=10_000)]


class OutcomesOut(BaseModel):
    """How many outcomes were recorded."""

    recorded: int


class ReloadOut(BaseModel):
    """The versions of a deployment loaded afresh by a server-side reload."""

    deployment: str
    reloaded: list[str] = Field(description="model/version keys, each loaded, warmed, swapped")


class BackendOut(BaseModel):
    """One version behind a deployment and its share of traffic."""

    model: str
    version: int
    weight: float
    role: str


class PlanOut(BaseModel):
    """Where a deployment's requests go at one revision."""

    deployment: str
    revision: int
    backends: list[BackendOut]
    shadow: BackendOut | None
    sticky_key: str | None


class RolloutOut(BaseModel):
    """A deployment's rollout: strategy, versions, options, step and status."""

    id: int
    strategy: str
    stable: str
    candidate: str
    config: dict[str, Any]
    step: int
    step_started_at: int
    status: str
    reason: str | None
    summary: dict[str, Any]


class DeploymentOut(BaseModel):
    """A deployment as it stands."""

    name: str
    environment: str
    description: str | None
    revision: int
    status: str
    plan: PlanOut
    rollout: RolloutOut | None
    created_at: int
    updated_at: int
    created_by: str


class DeploymentListOut(BaseModel):
    """Deployments by name."""

    deployments: list[DeploymentOut]


class HistoryEntryOut(BaseModel):
    """One traffic change."""

    deployment: str
    revision: int
    at: int
    actor: str
    action: str
    plan: PlanOut
    reason: str | None


class HistoryOut(BaseModel):
    """A deployment's traffic changes, oldest first."""

    history: list[HistoryEntryOut]


class BackendStatsOut(BaseModel):
    """Live figures of one backend."""

    backend: str
    requests: int
    errors: int
    error_rate: float
    p99_ms: float | None
    extra: dict[str, float]


class StatsOut(BaseModel):
    """Live figures per backend since the rollout's step began (empty with no data plane)."""

    deployment: str
    since: float | None
    serving_revision: int | None
    backends: list[BackendStatsOut]


class VariantOut(BaseModel):
    """One A/B variant's outcomes."""

    variant: str
    n: int
    mean: float | None
    std: float | None


class ComparisonOut(BaseModel):
    """One variant against the control."""

    variant: str
    control: str
    test: str
    statistic: float | None
    p_value: float | None
    significant: bool


class AnalysisOut(BaseModel):
    """An A/B test's analysis and verdict."""

    deployment: str
    rollout: int
    outcome: str
    alpha: float
    min_samples: int
    variants: list[VariantOut]
    comparisons: list[ComparisonOut]
    winner: str | None
    verdict: str
