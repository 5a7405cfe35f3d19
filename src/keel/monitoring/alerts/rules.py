"""Alert rules: a condition on one monitored figure of a deployment, and what to do when
it holds.

A rule compares one figure (``keel.monitoring.figures``: ``drift_share``, ``error_rate``,
``latency_p99_ms``, ``accuracy``, …) computed over a ``window`` of the deployment's recent
traffic against a ``threshold`` with ``op`` (``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=``).
The condition must hold ``for`` consecutive evaluations before the alert fires; it then
notifies its ``notifiers`` once and runs its ``actions`` (see ``engine``).

Rules come from the SDK (``keel.add_alert_rule``), the CLI (``keel alerts rule add``), or
a YAML file (``keel.load_alert_rules`` / ``keel alerts rule load FILE``, read by
``rules_file``)::

    rules:
      - name: churn-drift                # letters, digits, . _ - (at most 128)
        deployment: churn-prod
        metric: drift_share              # one of FIGURE_NAMES (or <metric>_decay)
        op: ">"                          # > >= < <= == !=
        threshold: 0.3
        window: 1h                       # figures over the last hour (30s, 5m, 1h, 1d; ≤ 30d)
        for: 2                           # consecutive breaching evaluations before firing
        severity: critical               # info | warning | critical
        cooldown: 10m                    # after a resolve, a new firing waits this long to notify
        repeat: 4h                       # re-notify a firing, unacknowledged alert (0: never)
        enabled: true
        description: drift on the churn model's inputs
        notifiers:
          - log
          - {type: webhook, url: "https://hooks.example.com/keel", headers: {X-Team: ml}}
          - {type: slack, url_env: SLACK_WEBHOOK_URL}
          - {type: email, host: smtp.example.com, port: 587, starttls: true,
             from: keel@example.com, to: [oncall@example.com],
             username: keel, password_env: SMTP_PASSWORD}
        actions:
          - rollback                     # roll the deployment back to its previous version
          - abort_canary                 # or pause_canary: stop / hold the running canary
          - {type: webhook, url: "https://ci.example.com/hooks/retrain"}
          - {type: trigger, payload: {reason: drift}}   # the pipelines' retraining hook

The document is a mapping with a ``rules`` list, or the list itself. Loading replaces
rules of the same name. Any bad field is an ``InvalidInput`` naming the rule and the field,
and nothing is stored unless every rule is valid. A webhook or Slack URL, header values
and SMTP credentials are secrets: through a server with auth on, only admins and the
rule's creator read them; everyone else reads them masked (``https://hooks.slack.com/***``),
and a write that carries a masked value back is refused. The audit log, events and logs
always get them masked. Better still, keep them in the environment of ``keel server``
(``url_env``, ``password_env``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from keel.errors import InvalidInput
from keel.monitoring.figures import FIGURE_NAMES as _FIGURES

__all__ = [
    "FIGURE_NAMES",
    "OPS",
    "SEVERITIES",
    "AlertRule",
    "breaches",
    "check_rule_name",
    "check_rule_outbound",
    "format_duration",
    "parse_duration",
    "parse_rule",
]

OPS = (">", ">=", "<", "<=", "==", "!=")
SEVERITIES = ("info", "warning", "critical")
MAX_WINDOW_S = 30 * 86_400.0
MAX_FOR = 10_000
MAX_LIST = 20  # notifiers or actions per rule
MAX_DESCRIPTION = 2_000

# The figures a rule may watch are the ones keel.monitoring.figures computes.
FIGURE_NAMES: tuple[str, ...] = tuple(_FIGURES)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DECAY = re.compile(r"[A-Za-z0-9_]{1,64}_decay")
# PostgreSQL refuses NUL in text; the other control characters garble what shows it
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def check_rule_name(name: object) -> str:
    """Return a valid rule name: a letter or digit, then letters, digits, . _ - (128)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"alert rule name {name!r:.80} must start with a letter or digit and contain only "
            "letters, digits, '.', '_' and '-' (at most 128 characters), e.g. churn-drift"
        )
    return name


def parse_duration(
    value: object, *, what: str, low: float = 0.0, high: float = MAX_WINDOW_S
) -> float:
    """Return seconds from ``"90s"``, ``"5m"``, ``"1h"``, ``"1d"`` or a number of seconds."""
    if isinstance(value, bool):
        raise InvalidInput(f"{what} is a duration like 30s, 5m or 1h, not {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    else:
        raise InvalidInput(f"{what} is a duration like 30s, 5m or 1h, not {value!r:.80}")
    if not math.isfinite(seconds) or not low <= seconds <= high:
        raise InvalidInput(
            f"{what} must be from {format_duration(low)} to {format_duration(high)}, "
            f"not {value!r:.80}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Return ``seconds`` in the largest whole unit (``3600`` → ``"1h"``, ``90`` → ``"90s"``)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_S[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return "0s" if seconds == 0 else f"{seconds:g}s"


def breaches(value: float, op: str, threshold: float) -> bool:
    """Return whether ``value op threshold`` holds (the rule's condition)."""
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == "<=":
        return value <= threshold
    if op == "==":
        return value == threshold
    return value != threshold


@dataclass(frozen=True)
class AlertRule:
    """One alert rule (see the module doc); durations are seconds."""

    name: str
    deployment: str
    metric: str
    op: str
    threshold: float
    window_s: float = 3600.0
    for_: int = 1
    severity: str = "warning"
    cooldown_s: float = 600.0
    repeat_s: float = 4 * 3600.0
    notifiers: tuple[Mapping[str, Any], ...] = ({"type": "log"},)
    actions: tuple[Mapping[str, Any], ...] = ()
    enabled: bool = True
    description: str | None = None
    created_at: int = 0
    updated_at: int = 0
    created_by: str = ""

    @property
    def window(self) -> str:
        """The window as text, e.g. ``"1h"``."""
        return format_duration(self.window_s)

    def condition(self) -> str:
        """Return the condition as text, e.g. ``drift_share > 0.3 over 1h``."""
        return f"{self.metric} {self.op} {self.threshold:g} over {self.window}"

    def to_dict(self) -> dict[str, Any]:
        """Return the rule as JSON-ready data (the fields ``parse_rule`` reads, and times)."""
        return {
            "name": self.name,
            "deployment": self.deployment,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "window": self.window,
            "for": self.for_,
            "severity": self.severity,
            "cooldown": format_duration(self.cooldown_s),
            "repeat": format_duration(self.repeat_s),
            "notifiers": [dict(n) for n in self.notifiers],
            "actions": [dict(a) for a in self.actions],
            "enabled": self.enabled,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
        }

    def masked(self) -> dict[str, Any]:
        """Return ``to_dict`` with URLs, headers and passwords masked (for logs and audit)."""
        from keel.monitoring.alerts.specs import mask

        data = self.to_dict()
        data["notifiers"] = [mask(n) for n in self.notifiers]
        data["actions"] = [mask(a) for a in self.actions]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertRule:
        """Return the rule ``to_dict`` wrote (checked as ``parse_rule`` checks it)."""
        rule = parse_rule(data)
        return replace(
            rule,
            created_at=int(data.get("created_at") or 0),
            updated_at=int(data.get("updated_at") or 0),
            created_by=str(data.get("created_by") or ""),
        )


_FIELDS = {
    "name",
    "deployment",
    "metric",
    "op",
    "threshold",
    "window",
    "for",
    "for_",
    "severity",
    "cooldown",
    "repeat",
    "notifiers",
    "actions",
    "enabled",
    "description",
    # written by to_dict; ignored on input
    "created_at",
    "updated_at",
    "created_by",
}


def _check_metric(metric: object, where: str) -> str:
    if isinstance(metric, str) and (metric in FIGURE_NAMES or _DECAY.fullmatch(metric)):
        return metric
    raise InvalidInput(
        f"{where}: metric {metric!r:.80} is not a monitored figure; use one of "
        f"{', '.join(FIGURE_NAMES)} or <metric>_decay"
    )


def _specs(value: object, where: str, kind: str) -> tuple[dict[str, Any], ...]:
    from keel.monitoring.alerts.specs import check_action, check_notifier

    if value is None:
        return ()
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, Sequence) or len(value) > MAX_LIST:
        raise InvalidInput(f"{where}: {kind}s is a list of at most {MAX_LIST} entries")
    check = check_notifier if kind == "notifier" else check_action
    return tuple(check(item, f"{where}: {kind} #{i + 1}") for i, item in enumerate(value))


def check_rule_outbound(rule: AlertRule) -> None:
    """Refuse (``InvalidInput``) a rule whose webhook notifiers or actions name a URL the
    outbound policy refuses; the stores call it before storing a rule (``parse_rule``
    does not: it also reads stored rules back, and must not resolve host names then)."""
    from keel.monitoring.alerts.specs import check_outbound

    for kind, specs in (("notifier", rule.notifiers), ("action", rule.actions)):
        for i, spec in enumerate(specs):
            check_outbound(spec, f"alert rule {rule.name!r}: {kind} #{i + 1}")


def parse_rule(data: object, *, where: str | None = None) -> AlertRule:
    """Return the rule a mapping describes (YAML/JSON fields of the module doc).

    ``InvalidInput`` names the rule and the offending field.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{where or 'an alert rule'} is a mapping of fields, not {data!r:.80}")
    name = data.get("name")
    label = f"alert rule {name!r:.80}" if isinstance(name, str) else (where or "an alert rule")
    if where and isinstance(name, str):
        label = f"{label} ({where})"
    unknown = sorted(str(k) for k in data if k not in _FIELDS)
    if unknown:
        raise InvalidInput(
            f"{label}: unknown field(s) {', '.join(unknown)[:200]}; known: "
            f"{', '.join(sorted(_FIELDS - {'for_', 'created_at', 'updated_at', 'created_by'}))}"
        )
    try:
        name = check_rule_name(name)
    except InvalidInput as exc:
        raise InvalidInput(f"{label}: name: {exc}") from None
    from keel.deploy.entities import check_deployment_name

    try:
        deployment = check_deployment_name(data.get("deployment"))
    except InvalidInput as exc:
        raise InvalidInput(f"{label}: deployment: {exc}") from None
    metric = _check_metric(data.get("metric"), label)
    op = data.get("op")
    if op not in OPS:
        raise InvalidInput(f"{label}: op must be one of {' '.join(OPS)}, not {op!r:.40}")
    threshold = data.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise InvalidInput(f"{label}: threshold must be a number, not {threshold!r:.80}")
    if not math.isfinite(threshold):
        raise InvalidInput(f"{label}: threshold must be finite, not {threshold!r}")
    window_s = parse_duration(data.get("window", "1h"), what=f"{label}: window", low=1.0)
    for_ = data.get("for", data.get("for_", 1))
    if isinstance(for_, bool) or not isinstance(for_, int) or not 1 <= for_ <= MAX_FOR:
        raise InvalidInput(f"{label}: for must be an integer from 1 to {MAX_FOR}, not {for_!r:.40}")
    severity = data.get("severity", "warning")
    if severity not in SEVERITIES:
        raise InvalidInput(
            f"{label}: severity must be one of {', '.join(SEVERITIES)}, not {severity!r:.40}"
        )
    cooldown_s = parse_duration(data.get("cooldown", "10m"), what=f"{label}: cooldown")
    repeat_s = parse_duration(data.get("repeat", "4h"), what=f"{label}: repeat")
    if 0 < repeat_s < 60:
        raise InvalidInput(f"{label}: repeat is 0 (never) or at least 1m, not {repeat_s:g}s")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput(f"{label}: enabled is true or false, not {enabled!r:.40}")
    description = data.get("description")
    if description is not None and (
        not isinstance(description, str)
        or len(description) > MAX_DESCRIPTION
        or _CONTROL.search(description)
    ):
        raise InvalidInput(
            f"{label}: description is text of at most {MAX_DESCRIPTION} characters, without "
            "control characters but newlines and tabs"
        )
    notifiers = _specs(data.get("notifiers", ["log"]), label, "notifier")
    actions = _specs(data.get("actions"), label, "action")
    return AlertRule(
        name=name,
        deployment=deployment,
        metric=metric,
        op=str(op),
        threshold=float(threshold),
        window_s=window_s,
        for_=for_,
        severity=str(severity),
        cooldown_s=cooldown_s,
        repeat_s=repeat_s,
        notifiers=notifiers,
        actions=actions,
        enabled=enabled,
        description=description,
    )
