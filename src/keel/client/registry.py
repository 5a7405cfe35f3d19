"""The registry store over HTTP: each ``RegistryStore`` method is one call to a Keel server.

Entities are rebuilt exactly as the SQL store returns them (version aliases as a tuple,
metrics as floats with NaN/±inf), and server errors come back as the same ``KeelError``
subclasses, so the registry behaves the same locally and through a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from keel.client.http import KeelHttp
from keel.registry.entities import AliasChange, ModelVersion, RegisteredModel
from keel.registry.store import RegistryStore
from keel.tracking.entities import float_to_json

__all__ = ["RestRegistryStore"]

# What RegistryStore.create_model_version reads from ``fields`` (other keys are ignored).
_VERSION_FIELDS = (
    "run_id",
    "source",
    "artifact_digest",
    "flavor",
    "signature",
    "input_example",
    "description",
    "metrics",
    "model_card",
    "created_by",
)


def _segment(value: str) -> str:
    """Return ``value`` percent-encoded as one path segment ('.' and '..' included)."""
    if value in {".", ".."}:
        return value.replace(".", "%2E")
    return quote(value, safe="")


def _model_path(name: str) -> str:
    return f"/api/v1/models/{_segment(name)}"


def _version_path(name: str, version: int) -> str:
    return f"{_model_path(name)}/versions/{int(version)}"


def _model_from(data: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=data["name"],
        description=data["description"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        latest_version=data["latest_version"],
        aliases=dict(data["aliases"]),
        tags=dict(data["tags"]),
    )


def _version_from(data: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=data["name"],
        version=data["version"],
        source=data["source"],
        run_id=data["run_id"],
        artifact_digest=data["artifact_digest"],
        flavor=data["flavor"],
        signature=data["signature"],
        input_example=data["input_example"],
        description=data["description"],
        metrics={k: float(v) for k, v in data["metrics"].items()},
        status=data["status"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        created_by=data["created_by"],
        aliases=tuple(data["aliases"]),
        tags=dict(data["tags"]),
    )


def _change_from(data: Mapping[str, Any]) -> AliasChange:
    return AliasChange(
        name=data["name"],
        alias=data["alias"],
        version=data["version"],
        previous_version=data["previous_version"],
        changed_at=data["changed_at"],
        changed_by=data["changed_by"],
    )


class RestRegistryStore(RegistryStore):
    """The model registry of a Keel server, through its REST API."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    # -- registered models ---------------------------------------------------------------
    def create_registered_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": dict(tags) if tags else None}
        return _model_from(self.http.request("POST", "/api/v1/models", json=body))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return _model_from(self.http.request("GET", _model_path(name)))

    def list_registered_models(self) -> list[RegisteredModel]:
        data = self.http.request("GET", "/api/v1/models")
        return [_model_from(m) for m in data["models"]]

    def update_registered_model(self, name: str, *, description: str | None) -> RegisteredModel:
        data = self.http.request("PATCH", _model_path(name), json={"description": description})
        return _model_from(data)

    def delete_registered_model(self, name: str) -> None:
        self.http.request("DELETE", _model_path(name))

    # -- versions ------------------------------------------------------------------------
    def create_model_version(
        self, name: str, fields: Mapping[str, Any], *, create_model: bool = True
    ) -> ModelVersion:
        body = {k: fields[k] for k in _VERSION_FIELDS if fields.get(k) is not None}
        if body.get("metrics"):
            body["metrics"] = {k: float_to_json(float(v)) for k, v in body["metrics"].items()}
        body["create_model"] = create_model
        data = self.http.request("POST", f"{_model_path(name)}/versions", json=body)
        return _version_from(data)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return _version_from(self.http.request("GET", _version_path(name, version)))

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        data = self.http.request("GET", f"{_model_path(name)}/versions")
        return [_version_from(v) for v in data["versions"]]

    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
    ) -> ModelVersion:
        data = self.http.request(
            "PATCH", _version_path(name, version), json={"description": description}
        )
        return _version_from(data)

    def set_model_card(self, name: str, version: int, card: str) -> None:
        self.http.request("PUT", f"{_version_path(name, version)}/card", json={"card": card})

    def get_model_card(self, name: str, version: int) -> str:
        return self.http.request("GET", f"{_version_path(name, version)}/card")["card"]

    # -- tags ----------------------------------------------------------------------------
    def set_model_tag(self, name: str, key: str, value: str) -> None:
        path = f"{_model_path(name)}/tags/{quote(key, safe='')}"
        self.http.request("PUT", path, json={"value": value})

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        path = f"{_version_path(name, version)}/tags/{quote(key, safe='')}"
        self.http.request("PUT", path, json={"value": value})

    # -- aliases -------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> AliasChange:
        path = f"{_model_path(name)}/aliases/{_segment(alias)}"
        data = self.http.request("PUT", path, json={"version": version, "actor": actor})
        return _change_from(data)

    def delete_alias(self, name: str, alias: str, *, actor: str) -> AliasChange:
        path = f"{_model_path(name)}/aliases/{_segment(alias)}"
        return _change_from(self.http.request("DELETE", path, params={"actor": actor}))

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        path = f"{_model_path(name)}/aliases/{_segment(alias)}"
        return _version_from(self.http.request("GET", path))

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        params = {"alias": alias} if alias is not None else None
        data = self.http.request("GET", f"{_model_path(name)}/alias-history", params=params)
        return [_change_from(c) for c in data["history"]]
