"""Pipeline schedules and triggers: their definitions, checks, and the cron arithmetic.

A :class:`PipelineSchedule` runs a pipeline (``MODULE:NAME`` or ``path/file.py:NAME``) at
the times a cron expression names (five fields, or six with seconds last), in a time zone.
When a server was down or a run was still going at due times, ``missed`` decides:

- ``"latest"`` (default): one catch-up run, for the most recent due time;
- ``"skip"``: a due time older than its grace (one period, at least 2 s, at most 60 s)
  is not run; a run happens only at the next due time;
- ``"all"``: every due time runs, oldest first, one after another, at most
  ``max_catchup`` of the most recent ones (older ones are dropped).

A :class:`PipelineTrigger` runs a pipeline when something happens: an alert fires
(``kind="alert"``, ``subject`` a rule name or ``"*"``), a model version is registered
(``"model_version"``, subject the model's name), a dataset version is logged
(``"dataset"``), or its webhook is called (``"webhook"``, with its secret token).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from keel.errors import InvalidInput

__all__ = [
    "DISPATCH_STATUSES",
    "EXECUTORS",
    "MISSED_POLICIES",
    "TRIGGER_KINDS",
    "WEBHOOK_HEADER",
    "Dispatch",
    "DuePlan",
    "PipelineSchedule",
    "PipelineTrigger",
    "check_cron",
    "check_executor",
    "check_missed",
    "check_name",
    "check_params",
    "check_pipeline_ref",
    "check_timezone",
    "check_trigger",
    "next_due",
    "plan_due",
]

MISSED_POLICIES = ("latest", "skip", "all")
WEBHOOK_HEADER = "Keel-Trigger-Token"  # a webhook call carries its trigger's token here
TRIGGER_KINDS = ("alert", "model_version", "dataset", "webhook")
EXECUTORS = ("local", "inline", "ray")
DISPATCH_STATUSES = ("running", "finished", "failed", "lost")
MAX_PARAMS = 100
MAX_PARAM_TEXT = 10_000
MAX_REF = 1_000
MAX_CATCHUP = 1_000
DEFAULT_CATCHUP = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
_SUBJECT = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


def check_name(name: object, what: str = "schedule") -> str:
    """Return a valid schedule or trigger name: a letter or digit, then letters, digits,
    ``.``, ``_``, ``-`` (at most 128 characters)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{what} name {name!r:.200} must start with a letter or digit and contain only "
            "letters, digits, '.', '_' and '-' (at most 128 characters), e.g. nightly-train"
        )
    return name


def check_pipeline_ref(ref: object) -> str:
    """Return ``ref`` if it has the shape of a pipeline reference (``TARGET:NAME``).

    Whether it imports is checked where user code may run (the SDK, and the run itself).
    """
    if not isinstance(ref, str) or not 3 <= len(ref) <= MAX_REF or "\x00" in ref:
        raise InvalidInput(f"a pipeline is named MODULE:NAME or FILE.py:NAME, got {ref!r:.200}")
    target, _, name = ref.rpartition(":")
    if not target.strip() or not name.replace(".", "_").isidentifier():
        raise InvalidInput(f"a pipeline is named MODULE:NAME or FILE.py:NAME, got {ref!r:.200}")
    if not target.endswith(".py") and not all(p.isidentifier() for p in target.split(".")):
        raise InvalidInput(
            f"{target!r:.200} in pipeline {ref!r:.200} is not a module nor a .py file"
        )
    return ref


def check_cron(cron: object) -> str:
    """Return ``cron`` if croniter accepts it: five fields, or six with seconds last."""
    from croniter import croniter

    if not isinstance(cron, str) or not 9 <= len(cron) <= 200 or len(cron.split()) not in (5, 6):
        raise InvalidInput(
            f"cron {cron!r:.200} must have 5 fields (minute hour day month weekday) or 6 "
            "(seconds last), e.g. '0 3 * * *'"
        )
    if not croniter.is_valid(cron):
        raise InvalidInput(
            f"cron {cron!r} is not a valid cron expression (minute 0-59, hour 0-23, day 1-31, "
            "month 1-12, weekday 0-6, seconds 0-59), e.g. '0 3 * * *'"
        )
    from croniter import CroniterBadDateError

    try:  # valid fields can still name no date at all (30 February, 31 April)
        croniter(cron, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        raise InvalidInput(
            f"cron {cron!r} names no date that exists (e.g. day 30 of February); check the "
            "day and month fields"
        ) from None
    return cron


def check_timezone(name: object) -> str:
    """Return an IANA time zone name zoneinfo knows (``UTC``, ``Europe/Paris``, …)."""
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or name.startswith(("/", ".")):
        raise InvalidInput(
            f"time zone {name!r:.100} must be an IANA name such as UTC or Europe/Paris"
        )
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"unknown time zone {name!r}; use an IANA name such as UTC or Europe/Paris"
        ) from None
    return name


def check_missed(policy: object) -> str:
    """Return a missed-run policy: latest, skip or all."""
    if policy not in MISSED_POLICIES:
        raise InvalidInput(
            f"missed-run policy {policy!r:.100} must be one of {', '.join(MISSED_POLICIES)}"
        )
    return str(policy)


def check_executor(executor: object) -> str:
    """Return an executor name a scheduled run may use."""
    if executor not in EXECUTORS:
        raise InvalidInput(f"executor {executor!r:.100} must be one of {', '.join(EXECUTORS)}")
    return str(executor)


def _param_text(key: str, value: object) -> str:
    # Stored as the text `keel pipeline run --param` takes; the run converts it to the
    # parameter's annotated type.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"parameter {key!r} must be finite, got {value!r}")
        return repr(value)
    if isinstance(value, str):
        if len(value) > MAX_PARAM_TEXT or "\x00" in value:
            raise InvalidInput(
                f"parameter {key!r} must be text of at most {MAX_PARAM_TEXT} characters "
                "without NUL characters"
            )
        return value
    raise InvalidInput(
        f"parameter {key!r} must be text, a number or a boolean, not {type(value).__name__}"
    )


def check_params(params: object) -> dict[str, str]:
    """Return ``params`` as parameter name → text (numbers and booleans written as text)."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidInput(
            f"params must be a mapping of name to value, not {type(params).__name__}"
        )
    if len(params) > MAX_PARAMS:
        raise InvalidInput(f"at most {MAX_PARAMS} params, got {len(params)}")
    out = {}
    for key, value in params.items():
        if not isinstance(key, str) or not _PARAM.fullmatch(key):
            raise InvalidInput(f"param name {key!r:.100} must be a Python identifier (at most 100)")
        out[key] = _param_text(key, value)
    return out


def check_trigger(kind: object, subject: object) -> tuple[str, str]:
    """Return a valid (kind, subject): what a trigger of ``kind`` listens to."""
    if kind not in TRIGGER_KINDS:
        raise InvalidInput(f"trigger kind {kind!r:.100} must be one of {', '.join(TRIGGER_KINDS)}")
    if kind == "webhook":
        if subject not in (None, ""):
            raise InvalidInput("a webhook trigger takes no subject (it is called by its name)")
        return "webhook", ""
    what = {"alert": "an alert rule name or '*'", "model_version": "a registered model's name"}
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject) or not subject.strip():
        raise InvalidInput(
            f"a {kind} trigger needs a subject: {what.get(str(kind), 'a dataset name')} "
            f"(1-256 printable characters), got {subject!r:.100}"
        )
    if subject == "*" and kind != "alert":
        raise InvalidInput(f"only an alert trigger may listen to '*', not a {kind} trigger")
    return str(kind), subject


@dataclass(frozen=True)
class PipelineSchedule:
    """A pipeline run at the times a cron expression names (see the module docstring)."""

    name: str
    pipeline: str
    cron: str
    timezone: str = "UTC"
    params: dict[str, str] = field(default_factory=dict)
    missed: str = "latest"
    max_catchup: int = DEFAULT_CATCHUP
    executor: str = "local"
    workdir: str | None = None
    enabled: bool = True
    next_run_at: int | None = None
    last_run_at: int | None = None
    last_run_id: str | None = None
    last_status: str | None = None
    last_error: str | None = None
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the schedule as JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineSchedule:
        """Return the schedule ``to_dict`` wrote."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class PipelineTrigger:
    """A pipeline run when an alert fires, a version appears or a webhook is called.

    ``params`` values may name the event's fields as ``{field}`` (``{version}``,
    ``{model}``, ``{dataset}``, ``{rule}``, …): each run gets them filled in.
    ``token`` is set only on the trigger a webhook ``add`` returns, once.
    """

    name: str
    pipeline: str
    kind: str
    subject: str = ""
    params: dict[str, str] = field(default_factory=dict)
    executor: str = "local"
    workdir: str | None = None
    enabled: bool = True
    fired: int = 0
    last_fired_at: int | None = None
    last_run_id: str | None = None
    last_status: str | None = None
    last_error: str | None = None
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""
    token: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the trigger as JSON-ready values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineTrigger:
        """Return the trigger ``to_dict`` wrote."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Dispatch:
    """One started run of a schedule or trigger: its process, then its pipeline run."""

    dispatch_id: str
    source: str
    name: str
    event_key: str
    status: str
    started_at: int
    due_at: int | None = None
    ended_at: int | None = None
    run_id: str | None = None
    error: str | None = None
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the dispatch as JSON-ready values."""
        return asdict(self)


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _iter(cron: str, tz: str, at_ms: int) -> Any:
    from croniter import croniter

    start = datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone(_zone(tz))
    return croniter(cron, start)


def _ms(value: datetime) -> int:
    return round(value.timestamp() * 1000)


def _repeated_wall_time(cron: str, tz: str, at_ms: int) -> bool:
    # The second 02:30 of a night the clocks go back: a job at a fixed hour ran at the
    # first one already (as cron does: only wildcard-hour jobs run in both).
    hour = cron.split()[1]
    if "*" in hour:
        return False
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone(_zone(tz)).fold == 1


def next_due(cron: str, tz: str, after_ms: int) -> int:
    """Return the first time (ms) strictly after ``after_ms`` that ``cron`` names in ``tz``
    (once per wall-clock time: a fixed-hour time repeated when clocks go back runs once)."""
    it = _iter(cron, tz, after_ms)
    while True:
        due = _ms(it.get_next(datetime))
        if not _repeated_wall_time(cron, tz, due):
            return due


def _prev(it: Any, cron: str, tz: str) -> int:
    while True:
        due = _ms(it.get_prev(datetime))
        if not _repeated_wall_time(cron, tz, due):
            return due


@dataclass(frozen=True)
class DuePlan:
    """What a tick does with a schedule: the due time to run (if any), and the next one."""

    run_at: int | None
    next_run_at: int
    dropped: int


def _grace_ms(cron: str, tz: str, due: int) -> int:
    period = next_due(cron, tz, due) - due
    return min(60_000, max(2_000, period))


def plan_due(schedule: PipelineSchedule, now: int) -> DuePlan | None:
    """Return what to do with ``schedule`` at ``now`` (ms) by its missed policy; None if
    nothing is due yet."""
    first = schedule.next_run_at
    if first is None or first > now:
        return None
    cron, tz = schedule.cron, schedule.timezone
    # Walk back from now: never forward over a long downtime (a per-second cron down a
    # year would be 31 million steps); at most max_catchup steps are taken.
    it = _iter(cron, tz, now + 1)
    latest = _prev(it, cron, tz)
    # A stored time off the cron (the cron was edited) still runs, once.
    latest = max(latest, first)
    if schedule.missed == "latest":
        return DuePlan(latest, next_due(cron, tz, latest), _count_hint(first, latest))
    if schedule.missed == "skip":
        on_time = now - latest <= _grace_ms(cron, tz, latest)
        run_at = latest if on_time else None
        return DuePlan(
            run_at, next_due(cron, tz, latest), _count_hint(first, latest) + (not on_time)
        )
    times = [latest]
    while len(times) < schedule.max_catchup:
        prev = _prev(it, cron, tz)
        if prev < first:
            break
        times.append(prev)
    oldest = times[-1]
    dropped = 0 if oldest <= first else 1  # at least one older due time was dropped
    return DuePlan(oldest, next_due(cron, tz, oldest), dropped)


def _count_hint(first: int, latest: int) -> int:
    # 1 if due times before ``latest`` were passed over, else 0 (exact counts would need
    # the forward walk the plan avoids).
    return int(first < latest)
