"""The promotion SDK: ``keel.promote``, ``keel.approve_promotion``, ``keel.promotion_history``.

    keel.approve_promotion("models:/churn/5", to="prod", comment="reviewed the card")
    result = keel.promote("models:/churn/5", to="prod")
    if not result.promoted:
        print(result.reasons)

A promotion runs the environment's gates where the metadata is (see
``keel.promotion.gates``): in this process on a local store, on the server (with the
environments of the server's config.toml) when the tracking URI is one. If every gate
passes it moves the environment's alias to the version and starts the configured
deployment strategy (creating the deployment if there is none). A refusal changes
nothing. Every attempt is recorded with its gates' results and audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.errors import InvalidInput
from keel.promotion.entities import Approval, PromotionResult
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
    from keel.promotion.engine import environment_of

    return environment_of(to)


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


def promote(
    model_uri: str, to: str | Environment | None = None, *, dry_run: bool = False
) -> PromotionResult:
    """Return the promotion of ``model_uri`` (``models:/churn/5``) into environment ``to``
    (a name in config.toml, an ``Environment`` built in code, or by default the current
    one): every gate's result, the alias move and the rollout.

    With ``dry_run`` the gates run and the attempt is recorded, but nothing moves.
    """
    if not isinstance(dry_run, bool):
        raise InvalidInput(f"dry_run is True or False, not {dry_run!r:.40}")
    from keel.config import get_settings

    stores = _stores()
    mv = _version(model_uri)
    project = get_settings().home.parent
    return stores.promotions.promote(stores, mv, to, dry_run=dry_run, project=project)


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
