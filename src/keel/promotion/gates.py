"""The gates of an environment, each evaluated to a ``GateResult`` with its figures.

- metric thresholds on the version's run metrics (the run's latest values, else those
  recorded when the version was registered);
- the champion comparison: the candidate and the alias's current holder loaded from the
  stores given (every file's digest verified) and scored in this process on the same
  evaluation data;
- approvals: distinct approvers holding the required role (unchecked roles — approvals
  recorded with auth off — count, since nothing could be checked);
- the deployment: it must not have a rollout running, so the one a promotion starts can.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING

from keel.errors import NotFound
from keel.promotion.entities import Approval, GateResult

if TYPE_CHECKING:
    from pathlib import Path

    from keel.environments import ApprovalGate, ChampionGate, Environment, MetricThreshold
    from keel.registry.entities import ModelVersion
    from keel.registry.packaging import LoadedModel
    from keel.stores import Stores

__all__ = ["approvals_gate", "champion_gate", "deployment_gate", "metric_gates"]


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _finite(value: float) -> float | None:
    # Gate figures are stored as JSON, which has no NaN or infinity.
    return value if math.isfinite(value) else None


def version_metrics(stores: Stores, version: ModelVersion) -> dict[str, float]:
    """Return the metrics a version's gates read: its run's latest, over the registered."""
    metrics = dict(version.metrics)
    if version.run_id:
        # A deleted run leaves the copy recorded at registration.
        with contextlib.suppress(NotFound):
            metrics.update(stores.tracking.get_run(version.run_id).metrics)
    return metrics


def metric_gates(
    metrics: dict[str, float], thresholds: tuple[MetricThreshold, ...], label: str
) -> list[GateResult]:
    """Return one result per threshold on ``metrics`` (of the version ``label``)."""
    results = []
    for threshold in thresholds:
        name = str(threshold)
        actual = metrics.get(threshold.metric)
        if actual is None:
            results.append(
                GateResult(
                    "metric",
                    name,
                    False,
                    f"{label} has no metric {threshold.metric!r}; log it on its run",
                    {"metric": threshold.metric, "value": None, "threshold": threshold.value},
                )
            )
            continue
        passed = threshold.holds(actual)
        verdict = "passes" if passed else "fails"
        results.append(
            GateResult(
                "metric",
                name,
                passed,
                f"{threshold.metric} = {_fmt(actual)} {verdict} {name}",
                {
                    "metric": threshold.metric,
                    "value": actual if math.isfinite(actual) else str(actual),
                    "op": threshold.op,
                    "threshold": threshold.value,
                },
            )
        )
    return results


def _load(stores: Stores, version: ModelVersion) -> LoadedModel:
    # From ``stores``, not the process's current ones (keel.load_model): on a server
    # they are the ones it serves.
    from keel.registry.api import _materialise
    from keel.registry.packaging import load_model_dir

    return load_model_dir(_materialise(stores, version.artifact_digest, version.uri))


def approvals_gate(approvals: list[Approval], spec: ApprovalGate, hint: str) -> GateResult:
    """Return whether ``approvals`` hold ``spec.count`` distinct approvers of ``spec.role``."""
    from keel.governance.auth import Role

    required = Role.parse(spec.role)
    counted: list[str] = []
    too_low: list[str] = []
    for approval in approvals:
        if approval.approver in counted:
            continue  # the same user approving twice counts once
        if approval.role is None or Role.parse(approval.role) >= required:
            counted.append(approval.approver)
        elif approval.approver not in too_low:
            too_low.append(approval.approver)
    too_low = [a for a in too_low if a not in counted]
    passed = len(counted) >= spec.count
    who = ", ".join(counted) or "nobody"
    reason = f"{len(counted)} of {spec.count} approvals by {spec.role} or higher ({who})"
    if too_low:
        reason += f"; not counted, role below {spec.role}: {', '.join(too_low)}"
    if not passed:
        reason += f"; approve with {hint}"
    details = {"required": spec.count, "role": spec.role, "approvers": counted, "below": too_low}
    return GateResult("approvals", "approvals", passed, reason, details)


def champion_gate(
    stores: Stores,
    spec: ChampionGate,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    alias: str,
    project: Path,
) -> GateResult:
    """Return the comparison of ``candidate`` with ``champion`` on the same data."""
    from keel.promotion.evaluation import load_evaluation_data, score

    name = f"champion {spec.metric}"
    data = load_evaluation_data(stores, spec.data, spec.target, project)
    details: dict[str, object] = {
        "metric": spec.metric,
        "direction": "maximize" if spec.maximize else "minimize",
        "min_improvement": spec.min_improvement,
        "data": spec.data,
        "data_digest": data.digest,
        "rows": data.rows,
        "target": spec.target,
        "champion_version": None if champion is None else champion.version,
    }
    mine = score(spec.metric, _load(stores, candidate), data, candidate.uri)
    details["candidate_score"] = _finite(mine)
    where = f"on {spec.data} ({data.rows} rows)"
    if champion is None:
        reason = f"no champion ({alias} is not set on {candidate.name}); {spec.metric} = "
        return GateResult("champion", name, True, reason + f"{_fmt(mine)} {where}", details)
    if champion.version == candidate.version:
        details["champion_score"] = _finite(mine)
        reason = f"version {candidate.version} already holds {alias}; {spec.metric} = {_fmt(mine)}"
        return GateResult("champion", name, True, reason, details)
    theirs = score(spec.metric, _load(stores, champion), data, champion.uri)
    gain = (mine - theirs) if spec.maximize else (theirs - mine)
    details["champion_score"] = _finite(theirs)
    details["improvement"] = _finite(gain)
    passed = math.isfinite(gain) and gain >= spec.min_improvement
    verdict = "beats" if passed else "does not beat"
    reason = (
        f"{spec.metric} {_fmt(mine)} vs champion v{champion.version} {_fmt(theirs)} {where}: "
        f"{gain:+.6g} {verdict} the required improvement {spec.min_improvement:g}"
    )
    return GateResult("champion", name, passed, reason, details)


def deployment_gate(stores: Stores, env: Environment, candidate: ModelVersion) -> GateResult:
    """Return whether the environment's deployment can take the rollout a promotion starts."""
    spec = env.deployment
    if spec is None or spec.strategy == "none":
        return GateResult("deployment", "deployment", True, "no deployment to start", {})
    name = spec.deployment_name(candidate.name, env.name)
    details: dict[str, object] = {"deployment": name, "strategy": spec.strategy}
    try:
        dep = stores.deployments.get_deployment(name)
    except NotFound:
        reason = f"deployment {name} does not exist; it will be created serving {candidate.uri}"
        return GateResult("deployment", "deployment", True, reason, details)
    rollout = dep.rollout
    if rollout is not None and rollout.running:
        reason = (
            f"deployment {name} has a {rollout.strategy.value} rollout of {rollout.candidate} "
            "running; promote, abort or roll it back first"
        )
        return GateResult("deployment", "deployment", False, reason, details)
    key = f"{candidate.name}/{candidate.version}"
    if dep.stable.key == key:
        reason = f"deployment {name} already serves {key}"
    else:
        reason = f"deployment {name} will roll {key} out by {spec.strategy} from {dep.stable.key}"
    return GateResult("deployment", "deployment", True, reason, details)
