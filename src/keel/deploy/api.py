"""The deployments SDK: ``keel.create_deployment``, ``keel.rollout``, ``keel.rollback``, ….

Each function works on the deployments store of the current tracking URI: the metadata
database directly, or a Keel server (whose controller then applies each change to the
versions it serves before the call returns). With a database, changes are recorded and a
running ``keel server`` on it applies them on its controller's next tick.

    keel.create_deployment("churn-prod", "models:/churn@champion", environment="prod")
    keel.rollout("churn-prod", "models:/churn/3", strategy="canary", steps=[5, 25, 50, 100])
    keel.rollback("churn-prod")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keel.deploy.analysis import ABAnalysis
from keel.deploy.entities import Deployment, HistoryEntry, Outcome
from keel.deploy.store import DEFAULT_HISTORY, DeploymentStore
from keel.errors import Conflict, InvalidInput

__all__ = [
    "ab_analysis",
    "abort_rollout",
    "create_deployment",
    "delete_deployment",
    "get_deployment",
    "get_deployment_history",
    "list_deployments",
    "pause_rollout",
    "promote_rollout",
    "record_outcome",
    "record_outcomes",
    "reload_deployment",
    "resume_rollout",
    "rollback",
    "rollout",
    "set_traffic",
]


def _store() -> DeploymentStore:
    from keel.stores import current_stores

    return current_stores().deployments


def create_deployment(
    name: str, model: str, *, environment: str = "default", description: str | None = None
) -> Deployment:
    """Return a new deployment ``name`` sending all its traffic to ``model`` (a URI)."""
    return _store().create_deployment(name, model, environment=environment, description=description)


def get_deployment(name: str) -> Deployment:
    """Return the deployment ``name``; ``NotFound`` otherwise."""
    return _store().get_deployment(name)


def list_deployments(environment: str | None = None) -> list[Deployment]:
    """Return every deployment (of ``environment`` if given), by name."""
    return _store().list_deployments(environment=environment)


def delete_deployment(name: str) -> None:
    """Delete a deployment with its history and outcomes (the audit log keeps them)."""
    _store().delete_deployment(name)


def get_deployment_history(name: str, limit: int = DEFAULT_HISTORY) -> list[HistoryEntry]:
    """Return the latest ``limit`` traffic changes of ``name``, oldest first."""
    return _store().deployment_history(name, limit=limit)


def rollout(
    name: str,
    model: str,
    *,
    strategy: str = "blue-green",
    config: Mapping[str, Any] | None = None,
    **options: Any,
) -> Deployment:
    """Return the deployment with a rollout of ``model`` by ``strategy`` started.

    ``strategy`` is "blue-green", "canary", "ab" or "shadow"; its options come as
    ``config`` or keyword arguments (e.g. ``steps=[5, 25, 50, 100], interval_s=60`` for a
    canary; ``weights=[50, 50], sticky_key="user_id", outcome="binary"`` for an A/B test;
    ``duration_s=3600`` for a shadow).
    """
    if config is not None and not isinstance(config, Mapping):
        raise InvalidInput(f"a rollout's config is a mapping of options, not {config!r:.80}")
    merged = {**dict(config or {}), **options}
    return _store().start_rollout(name, model, strategy=strategy, config=merged or None)


def set_traffic(name: str, weights: Mapping[str, float]) -> Deployment:
    """Return the deployment after splitting its traffic by hand, e.g.
    ``{"models:/churn/2": 90, "models:/churn/3": 10}`` (percent, summing to 100)."""
    return _store().set_traffic(name, weights)


def promote_rollout(name: str, to: str | None = None) -> Deployment:
    """Return the deployment after making its rollout's candidate (or A/B variant ``to``)
    stable with all traffic; the old stable version stays warm for a rollback."""
    return _store().promote(name, to=to)


def rollback(name: str, to: str | None = None) -> Deployment:
    """Return the deployment after sending all traffic back to the previous version (or
    ``to``); a running rollout ends. Instant where that version is still warm."""
    return _store().rollback(name, to=to)


def reload_deployment(name: str) -> list[str]:
    """Return the versions (``model/version``) of ``name`` a Keel server loaded afresh:
    fresh services loaded and warmed, swapped in, the old ones drained; no request fails.

    Only a server serves deployments, so the tracking URI must be one (``http(s)://``).
    """
    store = _store()
    reload = getattr(store, "reload", None)
    if not callable(reload):
        raise Conflict(
            f"reloading deployment {name!r} needs `keel server`: a local process serves "
            "nothing; set the tracking URI to the server (KEEL_TRACKING_URI=http://…)"
        )
    return list(reload(name))


def abort_rollout(name: str) -> Deployment:
    """Return the deployment after stopping its running rollout (back to its stable)."""
    return _store().abort(name)


def record_outcome(
    name: str, value: float, *, variant: str | None = None, request_key: str | None = None
) -> int:
    """Record one A/B outcome by its ``variant`` (``churn/3``) or its ``request_key``
    (the sticky key's value: the variant is recomputed by the same hashing); return 1."""
    return _store().record_outcomes(name, [Outcome(value, variant, request_key)])


def record_outcomes(name: str, outcomes: Iterable[Outcome | Mapping[str, Any]]) -> int:
    """Return how many outcomes (``Outcome``s or dicts with value and variant or
    request_key) were recorded for the running A/B test of ``name``."""
    if isinstance(outcomes, (str, bytes, Mapping)) or not isinstance(outcomes, Iterable):
        raise InvalidInput(
            f"outcomes are a list of Outcomes or dicts, not {type(outcomes).__name__}"
        )
    batch = []
    for item in outcomes:
        if isinstance(item, Outcome):
            batch.append(item)
        elif isinstance(item, Mapping):
            unknown = set(item) - {"value", "variant", "request_key"}
            if unknown or "value" not in item:
                raise InvalidInput(
                    f"an outcome has a value and a variant or request_key, not {dict(item)!r:.120}"
                )
            batch.append(Outcome(item["value"], item.get("variant"), item.get("request_key")))
        else:
            raise InvalidInput(f"an outcome is an Outcome or a dict, not {type(item).__name__}")
    return _store().record_outcomes(name, batch)


def ab_analysis(name: str) -> ABAnalysis:
    """Return the significance analysis of ``name``'s latest A/B test and its verdict."""
    return _store().ab_analysis(name)


def pause_rollout(name: str) -> Deployment:
    """Return the deployment with its running canary held at its current step: traffic
    stays as it is and no gate is judged until ``resume_rollout``."""
    return _store().pause(name)


def resume_rollout(name: str) -> Deployment:
    """Return the deployment with its paused canary going on; the step restarts now."""
    return _store().resume(name)
