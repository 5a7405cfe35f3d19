"""The registry store interface: every backend (SQL, REST) implements exactly this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from keel.registry.entities import AliasChange, ModelVersion, RegisteredModel

__all__ = ["RegistryStore"]


class RegistryStore(ABC):
    """Registered models, their versions, tags, aliases and alias history."""

    @abstractmethod
    def create_registered_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
    ) -> RegisteredModel:
        """Return a new registered model; ``AlreadyExists`` if the name is taken."""

    @abstractmethod
    def get_registered_model(self, name: str) -> RegisteredModel:
        """Return the registered model; ``NotFound`` otherwise."""

    @abstractmethod
    def list_registered_models(self) -> list[RegisteredModel]:
        """Return every registered model by name."""

    @abstractmethod
    def update_registered_model(self, name: str, *, description: str | None) -> RegisteredModel:
        """Set a model's description."""

    @abstractmethod
    def delete_registered_model(self, name: str) -> None:
        """Delete a model with its versions and aliases."""

    @abstractmethod
    def create_model_version(
        self, name: str, fields: Mapping[str, Any], *, create_model: bool = True
    ) -> ModelVersion:
        """Return a new version numbered one past the model's last (created if needed)."""

    @abstractmethod
    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """Return one version; ``NotFound`` otherwise."""

    @abstractmethod
    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Return a model's versions, newest first."""

    @abstractmethod
    def update_model_version(
        self,
        name: str,
        version: int,
        *,
        description: str | None = None,
    ) -> ModelVersion:
        """Set a version's description."""

    @abstractmethod
    def set_model_card(self, name: str, version: int, card: str) -> None:
        """Store a version's model card body (the markdown after its title)."""

    @abstractmethod
    def get_model_card(self, name: str, version: int) -> str:
        """Return a version's model card (markdown): its title, then the stored body."""

    @abstractmethod
    def set_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model."""

    @abstractmethod
    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set a tag on a model version."""

    @abstractmethod
    def set_alias(self, name: str, alias: str, version: int, *, actor: str) -> AliasChange:
        """Point ``alias`` at ``version`` (moving it if set); record the change."""

    @abstractmethod
    def delete_alias(self, name: str, alias: str, *, actor: str) -> AliasChange:
        """Remove ``alias``; record the change."""

    @abstractmethod
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Return the version ``alias`` points at; ``NotFound`` otherwise."""

    @abstractmethod
    def alias_history(self, name: str, alias: str | None = None) -> list[AliasChange]:
        """Return alias changes of a model, oldest first."""
