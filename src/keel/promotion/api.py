"""The promotion SDK: ``keel.promote``, ``keel.approve_promotion``, ``keel.promotion_history``.

    keel.approve_promotion("models:/churn/5", to="prod", comment="reviewed the card")
    result = keel.promote("models:/churn/5", to="prod")
    if not result.promoted:
        print(result.reasons)

A promotion runs the environment's gates here (see ``keel.promotion.gates``); if every
gate passes it moves the environment's alias to the version and starts the configured
deployment strategy (creating the deployment if there is none). A refusal changes
nothing. Every attempt is recorded with its gates' results and audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError, NotFound
from keel.promotion.entities import Approval, GateResult, PromotionResult
from keel.promotion.store import DEFAULT_LIMIT, PromotionStore

if TYPE_CHECKING:
    from keel.environments import Environment
    from keel.registry.entities import ModelVersion
    from keel.stores import Stores

__all__ = ["approve_promotion", "list_approvals", "promote", "promotion_history"]


def _stores() -> Stores:
    from keel.stores import current_stores

    return current_stores()


def _store() -> PromotionStore:
    return _stores().promotions


def _environment(to: str | Environment | None) -> Environment:
    from keel.environments import Environment, current_environment, get_environment

    if isinstance(to, Environment):  # one built in code (keel.environments.parse_environment)
        return to
    if to is None:
        env = current_environment()
        if env is None:
            raise InvalidInput(
                "name the environment to promote to: --to prod (or set KEEL_ENV / --env)"
            )
        return env
    return get_environment(to)


def _version(model_uri: str) -> ModelVersion:
    from keel.registry.api import resolve_model_version
    from keel.registry.uris import ModelRef, parse_model_uri

    if not isinstance(model_uri, str) or not model_uri.startswith("models:/"):
        raise InvalidInput(
            f"promote a registered version such as models:/churn/5, not {model_uri!r:.120}"
        )
    ref = parse_model_uri(model_uri)
    # The registry's URI parser takes any digits; a database integer holds fewer.
    if isinstance(ref, ModelRef) and ref.version is not None and ref.version >= 2**31:
        raise InvalidInput(f"the version in {model_uri[:80]!r} is out of range")
    return resolve_model_version(model_uri)


def _holder(stores: Stores, name: str, alias: str) -> ModelVersion | None:
    try:
        return stores.registry.get_version_by_alias(name, alias)
    except NotFound:
        return None


def _gates(
    stores: Stores, env: Environment, mv: ModelVersion, champion: ModelVersion | None
) -> list[GateResult]:
    from keel.config import get_settings
    from keel.promotion import gates

    spec = env.gates
    results = gates.metric_gates(gates.version_metrics(stores, mv), spec.metrics, mv.uri)
    if spec.compare_champion is not None:
        project = get_settings().home.parent
        results.append(
            gates.champion_gate(stores, spec.compare_champion, mv, champion, env.alias, project)
        )
    if spec.approvals is not None and spec.approvals.count > 0:
        approvals = stores.promotions.list_approvals(mv.name, mv.version, env.name)
        hint = f"`keel promote approve {mv.uri} --to {env.name}`"
        results.append(gates.approvals_gate(approvals, spec.approvals, hint))
    results.append(gates.deployment_gate(stores, env, mv))
    return results


def _start_deployment(stores: Stores, env: Environment, mv: ModelVersion) -> dict[str, Any] | None:
    """Return what was done to the environment's deployment (None if it has none)."""
    from keel.deploy import api as deploy

    spec = env.deployment
    if spec is None or spec.strategy == "none":
        return None
    name = spec.deployment_name(mv.name, env.name)
    try:
        dep = stores.deployments.get_deployment(name)
    except NotFound:
        dep = deploy.create_deployment(name, mv.uri, environment=env.name)
        return {
            "action": "create",
            "strategy": None,
            "revision": dep.revision,
            "status": dep.status,
        }
    if dep.stable.key == f"{mv.name}/{mv.version}":
        return {"action": "none", "strategy": None, "revision": dep.revision, "status": dep.status}
    dep = deploy.rollout(name, mv.uri, strategy=spec.strategy, config=spec.options)
    return {
        "action": "rollout",
        "strategy": spec.strategy,
        "revision": dep.revision,
        "status": dep.status,
    }


def _restore_alias(name: str, alias: str, previous: int | None) -> None:
    from keel.registry import api as registry

    if previous is None:
        registry.delete_alias(name, alias)
    else:
        registry.set_alias(name, alias, previous)


def promote(
    model_uri: str, to: str | Environment | None = None, *, dry_run: bool = False
) -> PromotionResult:
    """Return the promotion of ``model_uri`` (``models:/churn/5``) into environment ``to``
    (a name in config.toml, an ``Environment`` built in code, or by default the current
    one): every gate's result, the alias move and the rollout.

    With ``dry_run`` the gates run and the attempt is recorded, but nothing moves.
    """
    from keel.registry import api as registry

    if not isinstance(dry_run, bool):
        raise InvalidInput(f"dry_run is True or False, not {dry_run!r:.40}")
    env = _environment(to)
    stores = _stores()
    mv = _version(model_uri)
    champion = _holder(stores, mv.name, env.alias)
    previous = None if champion is None else champion.version
    results = _gates(stores, env, mv, champion)
    deployment = None
    if env.deployment is not None and env.deployment.strategy != "none":
        deployment = env.deployment.deployment_name(mv.name, env.name)
    rollout = None
    failed = [g for g in results if not g.passed]
    if failed:
        outcome = "refused"
        reason = "; ".join(g.reason for g in failed)
    elif dry_run:
        outcome, reason = "dry-run", f"every gate passed; {mv.uri} would become {env.alias}"
    else:
        registry.set_alias(mv.name, env.alias, mv.version)
        try:
            rollout = _start_deployment(stores, env, mv)
        except KeelError as exc:
            # The alias goes back so that a failed promotion changes nothing either.
            _restore_alias(mv.name, env.alias, previous)
            outcome = "failed"
            reason = f"deployment {deployment} could not start: {exc.message}"
        else:
            outcome = "promoted"
            moved = f"v{previous}" if previous is not None else "unset"
            reason = f"{env.alias}: {moved} -> v{mv.version}"
            if rollout is not None:
                reason += f"; deployment {deployment} {rollout['action']}: {rollout['status']}"
    draft = PromotionResult(
        promotion_id="",
        model=mv.name,
        version=mv.version,
        environment=env.name,
        alias=env.alias,
        outcome=outcome,
        dry_run=dry_run,
        previous_version=previous,
        gates=tuple(results),
        deployment=deployment,
        rollout=rollout,
        reason=reason,
        actor="",
        at=0,
    )
    return stores.promotions.record_promotion(draft)


def approve_promotion(
    model_uri: str, to: str | Environment | None = None, *, comment: str | None = None
) -> Approval:
    """Return the current user's approval of ``model_uri`` for environment ``to``.

    Approving twice counts once. Against a server with auth on, the approver must hold
    the role the environment's approvals gate asks for (403 otherwise).
    """
    env = _environment(to)
    mv = _version(model_uri)
    spec = env.gates.approvals
    role = None if spec is None else spec.role
    return _store().add_approval(mv.name, mv.version, env.name, comment=comment, required_role=role)


def list_approvals(model_uri: str, to: str | Environment | None = None) -> list[Approval]:
    """Return the approvals of ``model_uri`` for environment ``to``, oldest first."""
    env = _environment(to)
    mv = _version(model_uri)
    return _store().list_approvals(mv.name, mv.version, env.name)


def promotion_history(
    environment: str | None = None, *, model: str | None = None, limit: int = DEFAULT_LIMIT
) -> list[PromotionResult]:
    """Return the latest ``limit`` promotion attempts (of one environment or model),
    newest first."""
    return _store().list_promotions(environment=environment, model=model, limit=limit)
