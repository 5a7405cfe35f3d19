"""Request and response bodies of the registry API (/api/v1/models…).

Bounds mirror the metadata columns (names 256, keys 250, flavors 64, digests 64) so a
request that could not be stored is a 400 here, never a database error. Floats JSON cannot
carry travel as "NaN", "Infinity" and "-Infinity".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from keel.server.schemas.json_values import StorableJson, storable_json

__all__ = [
    "MAX_VERSION",
    "AliasChangeOut",
    "AliasHistoryOut",
    "AliasIn",
    "CardIn",
    "CardOut",
    "DescriptionIn",
    "ModelIn",
    "ModelListOut",
    "ModelVersionIn",
    "ModelVersionOut",
    "RegisteredModelOut",
    "TagIn",
    "VersionListOut",
    "metric_from_json",
]

MAX_VERSION = 2**31 - 1  # the metadata column is a 32-bit integer
MAX_TEXT = 1_000_000  # descriptions, cards, tag values: characters

Name = Annotated[StrictStr, Field(min_length=1, max_length=256)]
Key = Annotated[StrictStr, Field(min_length=1, max_length=250)]
Text = Annotated[StrictStr, Field(max_length=MAX_TEXT)]
Version = Annotated[StrictInt, Field(ge=1, le=MAX_VERSION)]
JsonFloat = StrictFloat | StrictInt | Literal["NaN", "Infinity", "-Infinity"]


def metric_from_json(value: float | int | str) -> float:
    """Return the float a JSON metric value stands for ("NaN" → nan, "Infinity" → inf)."""
    return float(value)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelIn(_Body):
    """POST /models: a new registered model."""

    name: Name
    description: Text | None = None
    tags: dict[Key, Text] | None = None


class DescriptionIn(_Body):
    """PATCH of a model or a version: its new description."""

    description: Text | None = None


class ModelVersionIn(_Body):
    """POST /models/{name}/versions: the fields of a new version."""

    source: Annotated[StrictStr, Field(min_length=1, max_length=4096)]
    artifact_digest: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{1,64}$")]
    flavor: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    created_by: Name
    run_id: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")] | None = None
    signature: Annotated[dict[str, Any] | None, AfterValidator(storable_json)] = None
    input_example: StorableJson = None
    description: Text | None = None
    metrics: dict[Key, JsonFloat] | None = None
    model_card: Text | None = None
    create_model: StrictBool = True


class CardIn(_Body):
    """PUT …/card: a version's model card body (markdown after its title)."""

    card: Text


class CardOut(BaseModel):
    """A version's model card: its title, then the stored body."""

    card: str


class TagIn(_Body):
    """PUT …/tags/{key}: the tag's value."""

    value: Text


class AliasIn(_Body):
    """PUT …/aliases/{alias}: the version the alias points at, and who moves it."""

    version: Version
    actor: Name


class RegisteredModelOut(BaseModel):
    """A registered model."""

    name: str
    description: str | None
    created_at: int
    updated_at: int
    latest_version: int
    aliases: dict[str, int]
    tags: dict[str, str]


class ModelListOut(BaseModel):
    """Every registered model, by name."""

    models: list[RegisteredModelOut]


class ModelVersionOut(BaseModel):
    """One model version (metrics that are not finite are "NaN"/"Infinity"/"-Infinity")."""

    name: str
    version: int
    source: str
    run_id: str | None
    artifact_digest: str
    flavor: str
    signature: dict[str, Any] | None
    input_example: Any
    description: str | None
    metrics: dict[str, float | str]
    status: str
    created_at: int
    updated_at: int
    created_by: str
    aliases: list[str]
    tags: dict[str, str]


class VersionListOut(BaseModel):
    """A model's versions, newest first."""

    versions: list[ModelVersionOut]


class AliasChangeOut(BaseModel):
    """One move of an alias (version None: removed)."""

    name: str
    alias: str
    version: int | None
    previous_version: int | None
    changed_at: int
    changed_by: str


class AliasHistoryOut(BaseModel):
    """Alias changes, oldest first."""

    history: list[AliasChangeOut]
