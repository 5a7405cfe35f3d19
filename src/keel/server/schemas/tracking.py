"""Request bodies of the tracking endpoints, and the checks that turn them into store calls.

Pydantic checks shapes and types (a wrong type is a 400 naming the field); the values are
then checked with the same functions the SDK uses (``keel.tracking.validation``), so a
client that skips the SDK still cannot store what the SDK would refuse.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from keel.errors import InvalidInput
from keel.server.schemas.json_values import storable_json
from keel.tracking.entities import ArtifactEntry, DatasetInput
from keel.tracking.store import MetricRow
from keel.tracking.validation import (
    INT64_MAX,
    check_id,
    check_key,
    check_metric_value,
    check_name,
    check_step,
    check_timestamp,
    param_value,
    tag_value,
)

__all__ = [
    "MAX_BATCH_METRICS",
    "MAX_JSON_BODY",
    "ArtifactsBody",
    "BatchBody",
    "ClaimBody",
    "EndRunBody",
    "ExperimentBody",
    "FailStaleBody",
    "HeartbeatBody",
    "InputsBody",
    "RunBody",
    "SearchBody",
    "clean_params",
    "clean_tags",
    "metric_rows",
]

MAX_BATCH_METRICS = 100_000
MAX_JSON_BODY = 32 * 1024 * 1024
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_DIGEST = re.compile(r"[0-9a-f]{64}")
Int64 = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentBody(_Body):
    """POST /experiments."""

    name: str
    artifact_location: str | None = Field(default=None, max_length=4096)
    description: str | None = Field(default=None, max_length=100_000)
    tags: dict[str, str] = Field(default_factory=dict)


class RunBody(_Body):
    """POST /runs."""

    experiment_id: str
    name: str
    user: str = Field(max_length=1024)
    start_time: Int64
    source: str | None = Field(default=None, max_length=4096)
    git_commit: str | None = Field(default=None, max_length=256)
    git_dirty: bool | None = None
    parent_run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    writer: str | None = Field(default=None, max_length=1024)


class EndRunBody(_Body):
    """POST /runs/{run_id}/end."""

    status: str
    end_time: Int64


class ClaimBody(_Body):
    """POST /runs/{run_id}/claim."""

    writer: str = Field(min_length=1, max_length=1024)
    now: Int64
    timeout_ms: Int64


class HeartbeatBody(_Body):
    """POST /runs/{run_id}/heartbeat."""

    writer: str = Field(min_length=1, max_length=1024)
    now: Int64


class FailStaleBody(_Body):
    """POST /runs/fail-stale."""

    now: Int64
    timeout_ms: Int64


class BatchBody(_Body):
    """POST /runs/{run_id}/batch: metrics as ``[key, value, timestamp, step]`` rows."""

    metrics: list[list[Any]] = Field(default_factory=list, max_length=MAX_BATCH_METRICS)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class DatasetInputBody(_Body):
    """One dataset a run consumed."""

    name: str
    digest: str = Field(min_length=1, max_length=256)
    source: str | None = Field(default=None, max_length=4096)
    context: str
    schema_: Annotated[dict[str, Any] | None, AfterValidator(storable_json)] = Field(
        default=None, alias="schema"
    )
    profile: Annotated[dict[str, Any] | None, AfterValidator(storable_json)] = None

    def to_entity(self) -> DatasetInput:
        """Return the checked ``DatasetInput``."""
        return DatasetInput(
            name=check_name("dataset", self.name),
            digest=self.digest,
            source=self.source,
            context=check_name("dataset context", self.context),
            schema=self.schema_,
            profile=self.profile,
        )


class InputsBody(_Body):
    """POST /runs/{run_id}/inputs."""

    inputs: list[DatasetInputBody] = Field(max_length=10_000)


class ArtifactEntryBody(_Body):
    """One artifact file of a run."""

    path: str = Field(min_length=1, max_length=4096)
    digest: str
    size: Int64

    def to_entity(self) -> ArtifactEntry:
        """Return the checked ``ArtifactEntry`` (relative path, BLAKE3 digest)."""
        from keel.tracking.fluent import clean_artifact_path

        path = clean_artifact_path(self.path)
        if not path:
            raise InvalidInput(f"artifact path {self.path!r} names no file")
        if _DIGEST.fullmatch(self.digest) is None:
            raise InvalidInput(
                f"artifact {path!r}: digest must be 64 lowercase hex characters (BLAKE3)"
            )
        return ArtifactEntry(path, self.digest, self.size)


class ArtifactsBody(_Body):
    """POST /runs/{run_id}/artifacts."""

    entries: list[ArtifactEntryBody] = Field(max_length=100_000)


class SearchBody(_Body):
    """POST /runs/search."""

    experiment_ids: list[str] = Field(default_factory=list, max_length=10_000)
    # Names (or ids) the server resolves as the SDK does, saving the client a round trip.
    experiment_names: list[str] | None = Field(default=None, max_length=10_000)
    filter: str | None = Field(default=None, max_length=100_000)
    order_by: list[str] | str | None = None
    max_results: Annotated[int, Field(strict=True)] = 1000
    page_token: str | None = Field(default=None, max_length=1000)

    def checked_ids(self, tracking: Any = None) -> list[str]:
        """Return the experiment ids, each checked, then those of ``experiment_names``
        resolved in ``tracking`` (``NotFound`` naming the first unknown one)."""
        ids = [check_id("experiment", i) for i in self.experiment_ids]
        if self.experiment_names:
            from keel.tracking.api import find_experiment

            ids += [find_experiment(tracking, n).experiment_id for n in self.experiment_names]
        return ids


def _metric_value(key: str, value: Any) -> float:
    if isinstance(value, str):
        if value in _NON_FINITE:
            return _NON_FINITE[value]
        raise InvalidInput(
            f'metric {key!r} must be a number or one of "NaN", "Infinity", "-Infinity", '
            f"got {value[:60]!r}"
        )
    try:
        return check_metric_value(key, value)
    except OverflowError:
        raise InvalidInput(f"metric {key!r} is too large for a 64-bit float") from None


def metric_rows(rows: list[list[Any]]) -> list[MetricRow]:
    """Return the metric rows checked; ``InvalidInput`` naming the first bad row."""
    out: list[MetricRow] = []
    append = out.append
    # Keys already checked in this batch. A row of a checked key with a float value and int
    # timestamp and step in range is what the full checks below would return unchanged, so
    # it skips them (they cost more per point than writing the point to SQLite).
    keys: set[str] = set()
    for i, row in enumerate(rows):
        if len(row) != 4:
            raise InvalidInput(
                f"metrics[{i}] has {len(row)} items; each row is [key, value, timestamp, step]"
            )
        key, value, ts, step = row
        if (
            type(key) is str
            and key in keys
            and type(value) is float
            and type(ts) is int
            and type(step) is int
            and 0 <= ts <= INT64_MAX
            and -INT64_MAX <= step <= INT64_MAX
        ):
            append((key, value, ts, step))
            continue
        try:
            key = check_key("metric", key)
            append((key, _metric_value(key, value), check_timestamp(ts), check_step(step)))
        except InvalidInput as exc:
            raise InvalidInput(f"metrics[{i}]: {exc.message}") from None
        keys.add(key)
    return out


def clean_params(params: dict[str, str]) -> dict[str, str]:
    """Return params with keys and values checked as the SDK checks them."""
    return {check_key("param", k): param_value(k, v) for k, v in params.items()}


def clean_tags(tags: dict[str, str]) -> dict[str, str]:
    """Return tags with keys and values checked as the SDK checks them."""
    return {check_key("tag", k): tag_value(k, v) for k, v in tags.items()}
