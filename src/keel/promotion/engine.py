"""One promotion attempt, run where the metadata is: gates, alias move, rollout, record.

The SDK runs it in its own process on a local store (SQLite, PostgreSQL); a Keel server
runs it for ``POST /api/v1/promotions`` on its own stores with the environments of its
own config.toml, so a client can ask for a promotion but never tell the server how its
gates came out. Every input is passed in (stores, environment, project folder, how to
start deployments): nothing here reads the process's current stores, which on a server
need not be the ones it serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from keel.errors import InvalidInput, KeelError, NotFound
from keel.governance.identity import current_actor
from keel.promotion.entities import GateResult, PromotionResult

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from keel.deploy.entities import Deployment
    from keel.deploy.store import DeploymentStore
    from keel.environments import Environment
    from keel.promotion.sql_store import SqlPromotionStore
    from keel.registry.entities import ModelVersion
    from keel.stores import Stores

__all__ = ["Deployer", "StoreDeployer", "environment_of", "run_promotion"]


def environment_of(to: str | Environment | None) -> Environment:
    """Return the environment ``to`` names in this process's config.toml (an ``Environment``
    built in code as it is; None: the current one, KEEL_ENV / ``--env``)."""
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


class Deployer(Protocol):
    """How a promotion creates a deployment or starts a rollout (a server goes through
    its deployment controller, so the data plane serves the change before it answers)."""

    def create(self, name: str, model_uri: str, *, environment: str) -> Deployment:
        """Return a new deployment ``name`` serving ``model_uri``."""
        ...

    def rollout(
        self, name: str, model_uri: str, *, strategy: str, config: Mapping[str, Any] | None
    ) -> Deployment:
        """Return deployment ``name`` with a rollout of ``model_uri`` started."""
        ...


class StoreDeployer:
    """Deployments changed in the deployments store alone (a local store: the serving
    process, if any, picks the change up from there)."""

    def __init__(self, store: DeploymentStore) -> None:
        self.store = store

    def create(self, name: str, model_uri: str, *, environment: str) -> Deployment:
        """Return a new deployment ``name`` serving ``model_uri``."""
        return self.store.create_deployment(name, model_uri, environment=environment)

    def rollout(
        self, name: str, model_uri: str, *, strategy: str, config: Mapping[str, Any] | None
    ) -> Deployment:
        """Return deployment ``name`` with a rollout of ``model_uri`` started."""
        return self.store.start_rollout(name, model_uri, strategy=strategy, config=config or None)


def _holder(stores: Stores, name: str, alias: str) -> ModelVersion | None:
    try:
        return stores.registry.get_version_by_alias(name, alias)
    except NotFound:
        return None


def _gates(
    stores: Stores,
    records: SqlPromotionStore,
    env: Environment,
    mv: ModelVersion,
    champion: ModelVersion | None,
    project: Path,
) -> list[GateResult]:
    from keel.promotion import gates

    spec = env.gates
    results = gates.metric_gates(gates.version_metrics(stores, mv), spec.metrics, mv.uri)
    if spec.compare_champion is not None:
        results.append(
            gates.champion_gate(stores, spec.compare_champion, mv, champion, env.alias, project)
        )
    if spec.approvals is not None and spec.approvals.count > 0:
        approvals = records.list_approvals(mv.name, mv.version, env.name)
        hint = f"`keel promote approve {mv.uri} --to {env.name}`"
        results.append(gates.approvals_gate(approvals, spec.approvals, hint))
    results.append(gates.deployment_gate(stores, env, mv))
    return results


def _start_deployment(
    stores: Stores, env: Environment, mv: ModelVersion, deployer: Deployer
) -> dict[str, Any] | None:
    """Return what was done to the environment's deployment (None if it has none)."""
    spec = env.deployment
    if spec is None or spec.strategy == "none":
        return None
    name = spec.deployment_name(mv.name, env.name)
    try:
        dep = stores.deployments.get_deployment(name)
    except NotFound:
        dep = deployer.create(name, mv.uri, environment=env.name)
        return {"action": "create", "strategy": None, "revision": dep.revision,
                "status": dep.status}  # fmt: skip
    if dep.stable.key == f"{mv.name}/{mv.version}":
        return {"action": "none", "strategy": None, "revision": dep.revision, "status": dep.status}
    dep = deployer.rollout(name, mv.uri, strategy=spec.strategy, config=spec.options)
    return {"action": "rollout", "strategy": spec.strategy, "revision": dep.revision,
            "status": dep.status}  # fmt: skip


def _restore_alias(stores: Stores, name: str, alias: str, previous: int | None) -> None:
    if previous is None:
        stores.registry.delete_alias(name, alias, actor=current_actor())
    else:
        stores.registry.set_alias(name, alias, previous, actor=current_actor())


def run_promotion(
    stores: Stores,
    records: SqlPromotionStore,
    env: Environment,
    mv: ModelVersion,
    *,
    dry_run: bool,
    project: Path,
    deployer: Deployer | None = None,
) -> PromotionResult:
    """Return the recorded attempt to promote ``mv`` into ``env``: every gate evaluated on
    ``stores`` (relative evaluation data under ``project``), and if all pass (and not
    ``dry_run``) the alias moved and the deployment started by ``deployer`` (by default
    straight in ``stores.deployments``). A refusal changes nothing; so does a rollout that
    cannot start (the alias goes back). ``records`` stores the attempt with its audit
    entry, as the current actor."""
    champion = _holder(stores, mv.name, env.alias)
    previous = None if champion is None else champion.version
    results = _gates(stores, records, env, mv, champion, project)
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
        stores.registry.set_alias(mv.name, env.alias, mv.version, actor=current_actor())
        try:
            rollout = _start_deployment(
                stores, env, mv, deployer or StoreDeployer(stores.deployments)
            )
        except KeelError as exc:
            # The alias goes back so that a failed promotion changes nothing either.
            _restore_alias(stores, mv.name, env.alias, previous)
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
    return records.record_promotion(draft)
