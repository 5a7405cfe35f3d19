"""The promotions store over HTTP: each ``PromotionStore`` method is one call to a server.

Entities are rebuilt exactly as the SQL store returns them, and server errors come back
as the same ``KeelError`` subclasses. A promotion is asked of the server by name (model,
version, environment, dry run): the server runs the gates of its own environment on its
own data, moves the alias, starts the rollout and records its own result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.client.http import KeelHttp
from keel.environments import Environment, check_environment_name
from keel.errors import InvalidInput
from keel.promotion.entities import Approval, PromotionResult
from keel.promotion.sql_store import check_version
from keel.promotion.store import (
    DEFAULT_LIMIT,
    PromotionStore,
    check_comment,
    check_limit,
)
from keel.registry.uris import check_model_name

if TYPE_CHECKING:
    from pathlib import Path

    from keel.registry.entities import ModelVersion
    from keel.stores import Stores

__all__ = ["RestPromotionStore"]

_BASE = "/api/v1/promotions"


def _acting() -> dict[str, str]:
    # Who acts, for the server's records when its auth is off (with auth on, the server
    # takes the token's user and ignores this).
    from keel.governance.identity import current_actor

    return {"Keel-Actor": current_actor()}


def _environment_name(environment: str | Environment | None) -> str:
    if isinstance(environment, Environment):
        raise InvalidInput(
            f"environment {environment.name!r} was built in code, but a Keel server promotes "
            "only into the environments of its own config.toml (it cannot vouch for gates "
            f"it does not hold): define [environments.{environment.name}] there and pass "
            "its name"
        )
    if environment is None:
        from keel.config import get_settings

        # KEEL_ENV / --env names it; the server holds its definition.
        environment = getattr(get_settings(), "env", "") or None
        if environment is None:
            raise InvalidInput(
                "name the environment to promote to: --to prod (or set KEEL_ENV / --env)"
            )
    return check_environment_name(environment)


class RestPromotionStore(PromotionStore):
    """The promotions and approvals of a Keel server, through its REST API."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def add_approval(
        self,
        model: str,
        version: int,
        environment: str,
        *,
        comment: str | None = None,
        required_role: str | None = None,
    ) -> Approval:
        body = {
            "model": check_model_name(model),
            "version": check_version(version),
            "environment": check_environment_name(environment),
            "comment": check_comment(comment),
            "required_role": required_role,
        }
        data = self.http.request("POST", f"{_BASE}/approvals", json=body, headers=_acting())
        return Approval.from_dict(data)

    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        params = {
            "model": check_model_name(model),
            "version": check_version(version),
            "environment": check_environment_name(environment),
        }
        data = self.http.request("GET", f"{_BASE}/approvals", params=params)
        return [Approval.from_dict(a) for a in data["approvals"]]

    def promote(
        self,
        stores: Stores,
        version: ModelVersion,
        environment: str | Environment | None,
        *,
        dry_run: bool,
        project: Path,
    ) -> PromotionResult:
        body = {
            "model": check_model_name(version.name),
            "version": check_version(version.version),
            "environment": _environment_name(environment),
            "dry_run": dry_run,
        }
        data = self.http.request("POST", _BASE, json=body, headers=_acting())
        return PromotionResult.from_dict(data)

    def list_promotions(
        self,
        *,
        environment: str | None = None,
        model: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[PromotionResult]:
        params: dict[str, Any] = {"limit": check_limit(limit)}
        if environment is not None:
            params["environment"] = check_environment_name(environment)
        if model is not None:
            params["model"] = check_model_name(model)
        data = self.http.request("GET", _BASE, params=params)
        return [PromotionResult.from_dict(p) for p in data["promotions"]]
