"""The deployments store over HTTP: each ``DeploymentStore`` method is one call to a server.

Changes go through the server's deployment controller, so through a server a change is
applied to its serving data plane before the call returns. Entities are rebuilt exactly
as the SQL store returns them, and server errors come back as the same ``KeelError``
subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from keel.client.http import KeelHttp
from keel.deploy.analysis import ABAnalysis
from keel.deploy.entities import (
    Deployment,
    HistoryEntry,
    Outcome,
    check_deployment_name,
    check_environment,
)
from keel.deploy.store import DEFAULT_HISTORY, DeploymentStore, check_limit, check_weights

__all__ = ["RestDeploymentStore"]

_BASE = "/api/v1/deployments"


def _acting() -> dict[str, str]:
    # Who makes the change, for the server's history and audit log when its auth is off
    # (with auth on, the server takes the token's user and ignores this).
    from keel.governance.identity import current_actor

    return {"Keel-Actor": current_actor()}


def _path(name: str, *rest: str) -> str:
    # Checked here too: a valid name needs no percent-encoding and cannot climb the path.
    return "/".join((_BASE, check_deployment_name(name), *rest))


class RestDeploymentStore(DeploymentStore):
    """The deployments of a Keel server, through its REST API."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def _deployment(self, method: str, path: str, json: Any = None) -> Deployment:
        headers = None if method == "GET" else _acting()
        return Deployment.from_dict(self.http.request(method, path, json=json, headers=headers))

    def create_deployment(
        self,
        name: str,
        model: str,
        *,
        environment: str = "default",
        description: str | None = None,
    ) -> Deployment:
        body = {
            "name": check_deployment_name(name),
            "model": model,
            "environment": environment,
            "description": description,
        }
        return self._deployment("POST", _BASE, body)

    def get_deployment(self, name: str) -> Deployment:
        return self._deployment("GET", _path(name))

    def list_deployments(self, *, environment: str | None = None) -> list[Deployment]:
        params = None if environment is None else {"environment": check_environment(environment)}
        data = self.http.request("GET", _BASE, params=params)
        return [Deployment.from_dict(d) for d in data["deployments"]]

    def delete_deployment(self, name: str) -> None:
        self.http.request("DELETE", _path(name), headers=_acting())

    def deployment_history(self, name: str, *, limit: int = DEFAULT_HISTORY) -> list[HistoryEntry]:
        params = {"limit": check_limit(limit)}
        data = self.http.request("GET", _path(name, "history"), params=params)
        return [HistoryEntry.from_dict(h) for h in data["history"]]

    def start_rollout(
        self,
        name: str,
        model: str,
        *,
        strategy: str = "blue-green",
        config: Mapping[str, Any] | None = None,
    ) -> Deployment:
        body = {
            "model": model,
            "strategy": strategy,
            "config": None if config is None else dict(config),
        }
        return self._deployment("POST", _path(name, "rollouts"), body)

    def set_traffic(self, name: str, weights: Mapping[str, float]) -> Deployment:
        body = {"weights": check_weights(weights)}
        return self._deployment("PUT", _path(name, "traffic"), body)

    def promote(self, name: str, *, to: str | None = None) -> Deployment:
        return self._deployment("POST", _path(name, "promote"), {"to": to})

    def rollback(self, name: str, *, to: str | None = None) -> Deployment:
        return self._deployment("POST", _path(name, "rollback"), {"to": to})

    def abort(self, name: str) -> Deployment:
        return self._deployment("POST", _path(name, "abort"))

    def pause(self, name: str) -> Deployment:
        return self._deployment("POST", _path(name, "pause"))

    def resume(self, name: str) -> Deployment:
        return self._deployment("POST", _path(name, "resume"))

    def record_outcomes(self, name: str, outcomes: Sequence[Outcome]) -> int:
        body = {
            "outcomes": [
                {"value": o.value, "variant": o.variant, "request_key": o.request_key}
                for o in outcomes
            ]
        }
        return int(self.http.request("POST", _path(name, "outcomes"), json=body)["recorded"])

    def ab_analysis(self, name: str) -> ABAnalysis:
        return ABAnalysis.from_dict(self.http.request("GET", _path(name, "analysis")))

    def reload(self, name: str) -> list[str]:
        """Return the versions the server loaded afresh for ``name`` (``model/version``)."""
        data = self.http.request("POST", _path(name, "reload"), headers=_acting())
        return [str(key) for key in data["reloaded"]]

    def live_stats(self, name: str) -> dict[str, Any]:
        """Return the server's live figures for ``name`` (``StatsOut`` as JSON)."""
        return self.http.request("GET", _path(name, "stats"))
