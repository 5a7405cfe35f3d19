"""Named environments (``dev``, ``staging``, ``prod``) from ``config.toml``, and the current one.

Each ``[environments.<name>]`` table in ``<home>/config.toml`` is one environment::

    [environments.prod]
    description = "what customers use"
    alias = "prod"                  # the alias a promotion moves (default: the name)
    tracking_uri = "postgresql+psycopg://keel@db/keel"   # optional overrides, see below
    artifact_uri = "s3://models/keel"

    [environments.prod.deployment]  # started on promotion (leave out for none)
    name = "{model}-prod"           # {model} is the promoted model's name
    strategy = "canary"             # "none", "blue-green" or "canary"
    steps = [10, 50, 100]           # canary options, as ``keel.rollout`` takes them
    interval_s = 60

    [environments.prod.gates]
    metrics = ["accuracy >= 0.9", "latency_ms < 5"]     # on the version's run metrics
    approvals = { count = 1, role = "admin" }           # distinct approvers with that role

    [environments.prod.gates.compare_champion]
    metric = "accuracy"             # scored with sklearn.metrics in this process
    direction = "maximize"          # default: the metric's natural direction
    min_improvement = 0.0           # the candidate must beat the champion by at least this
    data = "data/holdout.parquet"   # .parquet or .csv (relative to the project folder), or
                                    # runs:/<run-id>/<artifact path> of a logged file
    target = "churned"              # the label column; every other column is a feature

The current environment is ``KEEL_ENV`` (``env`` in config.toml) or ``keel --env NAME``.
Only ``tracking_uri`` and ``artifact_uri`` may be overridden per environment: when that
environment is current, its values replace the top-level ones of config.toml, while
``KEEL_TRACKING_URI``/``KEEL_ARTIFACT_URI`` and ``keel.set_tracking_uri`` still win.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from keel.config import KeelSettings

__all__ = [
    "OVERRIDABLE",
    "ApprovalGate",
    "ChampionGate",
    "DeploymentSpec",
    "Environment",
    "Gates",
    "MetricThreshold",
    "apply_environment",
    "check_environment_name",
    "current_environment",
    "get_environment",
    "list_environments",
    "parse_environment",
    "parse_threshold",
    "select_environment",
]

OVERRIDABLE = ("tracking_uri", "artifact_uri")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_THRESHOLD = re.compile(
    r"\s*(?P<metric>[A-Za-z_][\w.\-/]{0,249})\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
)
OPERATORS: dict[str, Any] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
# metric -> (natural direction, needs predict_proba)
CHAMPION_METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("maximize", False),
    "balanced_accuracy": ("maximize", False),
    "f1": ("maximize", False),
    "precision": ("maximize", False),
    "recall": ("maximize", False),
    "roc_auc": ("maximize", True),
    "log_loss": ("minimize", True),
    "r2": ("maximize", False),
    "mae": ("minimize", False),
    "mse": ("minimize", False),
    "rmse": ("minimize", False),
}
STRATEGIES = ("none", "blue-green", "canary")


def check_environment_name(name: object) -> str:
    """Return a valid environment name (a letter or _, then letters, digits, _ or -; 64)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.lower() == "latest":
        raise InvalidInput(
            f"environment name {name!r:.80} must start with a letter and contain only "
            "letters, digits, _ and - (at most 64 characters; not 'latest')"
        )
    return name


class MetricThreshold(BaseModel):
    """One ``<metric> <op> <number>`` gate on the version's run metrics."""

    model_config = ConfigDict(frozen=True)

    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def holds(self, actual: float) -> bool:
        """Return whether ``actual`` passes (NaN never does)."""
        return not math.isnan(actual) and bool(OPERATORS[self.op](actual, self.value))


def parse_threshold(text: object) -> MetricThreshold:
    """Return the threshold ``text`` ("accuracy >= 0.9") states; ``InvalidInput`` otherwise."""
    if not isinstance(text, str) or len(text) > 300:
        raise InvalidInput(f"a metric gate is text like 'accuracy >= 0.9', not {text!r:.80}")
    match = _THRESHOLD.fullmatch(text)
    if match is None:
        raise InvalidInput(
            f"metric gate {text!r} is not '<metric> <op> <number>' with op one of "
            ">=, <=, >, <, ==, != (e.g. 'accuracy >= 0.9')"
        )
    value = float(match["value"])
    if not math.isfinite(value):
        raise InvalidInput(f"metric gate {text!r} needs a finite number")
    return MetricThreshold(metric=match["metric"], op=match["op"], value=value)


class ChampionGate(BaseModel):
    """Score the candidate and the alias's current holder on the same data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    direction: Literal["maximize", "minimize"] | None = None
    min_improvement: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    data: str = Field(min_length=1, max_length=4096)
    target: str = Field(min_length=1, max_length=256)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in CHAMPION_METRICS:
            raise ValueError(f"unknown metric {value!r}; use one of {', '.join(CHAMPION_METRICS)}")
        return value

    @property
    def maximize(self) -> bool:
        """True when a higher score is better."""
        return (self.direction or CHAMPION_METRICS[self.metric][0]) == "maximize"


class ApprovalGate(BaseModel):
    """At least ``count`` distinct approvers holding ``role`` (or higher)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(default=1, ge=0, le=100)
    role: Literal["viewer", "editor", "admin"] = "editor"


class Gates(BaseModel):
    """What a version must pass to be promoted into an environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metrics: tuple[MetricThreshold, ...] = ()
    compare_champion: ChampionGate | None = None
    approvals: ApprovalGate | None = None

    @field_validator("metrics", mode="before")
    @classmethod
    def _parse_metrics(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or len(value) > 100:
            raise ValueError("metrics is a list of up to 100 gates like 'accuracy >= 0.9'")
        try:
            return tuple(v if isinstance(v, MetricThreshold) else parse_threshold(v) for v in value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator("approvals", mode="before")
    @classmethod
    def _count_alone(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"count": value}  # ``approvals = 2``: two editors
        return value


class DeploymentSpec(BaseModel):
    """The deployment a promotion starts, and by which strategy."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str = Field(default="{model}-{environment}", min_length=1, max_length=200)
    strategy: Literal["none", "blue-green", "canary"] = "canary"

    @property
    def options(self) -> dict[str, Any]:
        """The strategy's options (``steps``, ``interval_s``, the canary gate's bounds)."""
        return dict(self.model_extra or {})

    def deployment_name(self, model: str, environment: str) -> str:
        """Return the deployment's name for ``model`` (``{model}`` filled in), checked."""
        from keel.deploy.entities import check_deployment_name

        filled = self.name.replace("{model}", model).replace("{environment}", environment)
        return check_deployment_name(filled)


class Environment(BaseModel):
    """One named environment: its alias, setting overrides, deployment and gates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str | None = Field(default=None, max_length=10_000)
    alias: str = ""
    tracking_uri: str | None = Field(default=None, max_length=4096)
    artifact_uri: str | None = Field(default=None, max_length=4096)
    deployment: DeploymentSpec | None = None
    gates: Gates = Gates()

    def to_dict(self) -> dict[str, Any]:
        """Return the environment as JSON-able data (gates as their text)."""
        data = self.model_dump(mode="json", exclude={"gates", "deployment"})
        gates = self.gates
        data["gates"] = {
            "metrics": [str(m) for m in gates.metrics],
            "compare_champion": None
            if gates.compare_champion is None
            else gates.compare_champion.model_dump(mode="json"),
            "approvals": None if gates.approvals is None else gates.approvals.model_dump(),
        }
        dep = self.deployment
        data["deployment"] = (
            None if dep is None else {"name": dep.name, "strategy": dep.strategy, **dep.options}
        )
        return data


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'table'}: "
        f"{err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors()
    )


def parse_environment(name: str, table: object) -> Environment:
    """Return environment ``name`` parsed from its config table; ``InvalidInput`` naming the
    environment and the key otherwise."""
    name = check_environment_name(name)
    if not isinstance(table, Mapping):
        raise InvalidInput(f"[environments.{name}] must be a table, not {table!r:.80}")
    try:
        env = Environment(name=name, **{k: v for k, v in table.items() if k != "name"})
    except ValidationError as exc:
        raise InvalidInput(f"environment {name!r} in config.toml: {_problems(exc)}") from None
    except TypeError as exc:
        raise InvalidInput(f"environment {name!r} in config.toml: {exc}") from None
    try:
        from keel.registry.uris import check_alias

        alias = check_alias(env.alias or name)
        if env.deployment is not None:
            _check_deployment(env.deployment, name)
    except InvalidInput as exc:
        raise InvalidInput(f"environment {name!r} in config.toml: {exc.message}") from None
    return env.model_copy(update={"alias": alias})


def _check_deployment(spec: DeploymentSpec, environment: str) -> None:
    from keel.deploy.canary import CanaryConfig

    spec.deployment_name("m", environment)  # the template fills to a valid name
    if spec.strategy == "canary":
        CanaryConfig.parse(spec.options)
    elif spec.options:
        raise InvalidInput(
            f"deployment: strategy {spec.strategy!r} takes no options, not {sorted(spec.options)}"
        )


def _tables(settings: KeelSettings) -> Mapping[str, Any]:
    tables = getattr(settings, "environments", None) or {}
    if not isinstance(tables, Mapping):
        raise InvalidInput("[environments] in config.toml must be a table of environments")
    return tables


def list_environments(settings: KeelSettings | None = None) -> list[Environment]:
    """Return every environment config.toml defines, by name."""
    settings = settings or _settings()
    return [parse_environment(name, table) for name, table in sorted(_tables(settings).items())]


def get_environment(name: str, settings: KeelSettings | None = None) -> Environment:
    """Return environment ``name``; ``NotFound`` naming the defined ones otherwise."""
    name = check_environment_name(name)
    settings = settings or _settings()
    tables = _tables(settings)
    if name not in tables:
        known = ", ".join(sorted(tables)) or "none"
        raise NotFound(
            f"no environment named {name!r} (defined: {known}); add an "
            f"[environments.{name}] table to {settings.home / 'config.toml'}"
        )
    return parse_environment(name, tables[name])


def current_environment(settings: KeelSettings | None = None) -> Environment | None:
    """Return the current environment (``KEEL_ENV`` / ``--env``), or None if none is set."""
    settings = settings or _settings()
    name = getattr(settings, "env", "") or ""
    return get_environment(name, settings) if name else None


def apply_environment(settings: KeelSettings, explicit: Mapping[str, Any]) -> KeelSettings:
    """Return ``settings`` with the current environment's overrides applied (see module doc);
    ``explicit`` are the overrides given in code, which win."""
    name = getattr(settings, "env", "") or ""
    if not name:
        return settings
    env = get_environment(name, settings)
    update = {
        key: getattr(env, key)
        for key in OVERRIDABLE
        if getattr(env, key) and key not in explicit and f"KEEL_{key.upper()}" not in os.environ
    }
    return settings.model_copy(update=update) if update else settings


def select_environment(name: str | None) -> None:
    """Make ``name`` this process's current environment (``keel --env``); None clears it."""
    from keel import config

    clean = None if name is None else check_environment_name(name)
    with config._lock:
        if clean is None:
            config._overrides.pop("env", None)
        else:
            config._overrides["env"] = clean
        config._cached = None


def _settings() -> KeelSettings:
    from keel.config import get_settings

    return get_settings()
