"""What the registry returns: registered models, versions and alias changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["AliasChange", "ModelVersion", "RegisteredModel"]


@dataclass(frozen=True)
class RegisteredModel:
    """A named model with its versions' aliases."""

    name: str
    description: str | None
    created_at: int
    updated_at: int
    latest_version: int
    aliases: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this model."""
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model."""

    name: str
    version: int
    source: str
    run_id: str | None
    artifact_digest: str
    flavor: str
    signature: dict[str, Any] | None
    input_example: Any
    description: str | None
    metrics: dict[str, float]
    status: str
    created_at: int
    updated_at: int
    created_by: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        """The ``models:/name/version`` URI of this version."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this version."""
        from keel.tracking.entities import float_to_json

        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "run_id": self.run_id,
            "artifact_digest": self.artifact_digest,
            "flavor": self.flavor,
            "signature": self.signature,
            "input_example": self.input_example,
            "description": self.description,
            "metrics": {k: float_to_json(v) for k, v in self.metrics.items()},
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
        }


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias: from ``previous_version`` to ``version`` (None = removed)."""

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    changed_at: int
    changed_by: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this change."""
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "previous_version": self.previous_version,
            "changed_at": self.changed_at,
            "changed_by": self.changed_by,
        }
