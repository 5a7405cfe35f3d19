"""Canary rollouts: progressive weights, each step held and judged by a gate on live figures.

A step is judged once its interval has elapsed, on the figures since it started:

- the canary needs ``min_requests`` requests first. Without them the step keeps waiting,
  up to ``max_wait`` more intervals; then ``on_no_traffic`` decides: ``"fail"`` (the
  default: a version nobody has exercised is not promoted, it is rolled back) or
  ``"pass"`` (quiet environments, where no traffic is normal);
- error rate: the canary's may exceed the stable's by at most ``max_error_rate_increase``
  (absolute, e.g. 0.05 = 5 points), and never ``max_error_rate`` if that is set;
- p99 latency: the canary's may be at most ``max_p99_ratio`` times the stable's plus
  ``p99_slack_ms`` (small latencies are noisy, so a ratio alone would flap);
- any extra metric (``BackendStats.extra``, e.g. one the monitoring adds): a
  :class:`MetricBound` with an absolute ``min``/``max`` and/or a ``max_increase`` /
  ``max_decrease`` against the stable's value. A metric not reported yet counts as
  missing data (the step waits, as for too few requests).

The stable figures compared against are the stable's in the same window; when the stable
has too few requests there (e.g. at the 100% step) the baseline kept from the previous
step is used, and with no baseline at all only the absolute bounds apply.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from keel.deploy.traffic import BackendStats
from keel.errors import InvalidInput

__all__ = [
    "DEFAULT_STEPS",
    "CanaryConfig",
    "GateConfig",
    "GateResult",
    "MetricBound",
    "evaluate_gate",
]

DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)
MAX_STEPS = 100
MAX_INTERVAL_S = 7 * 24 * 3600.0


def _number(where: str, value: Any, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInput(f"{where} must be between {low:g} and {high:g}, not {value!r}")
    return number


def _optional(where: str, value: Any, *, low: float, high: float) -> float | None:
    return None if value is None else _number(where, value, low=low, high=high)


@dataclass(frozen=True)
class MetricBound:
    """A bound on one extra metric of the canary, absolute or against the stable."""

    metric: str
    min: float | None = None
    max: float | None = None
    max_increase: float | None = None
    max_decrease: float | None = None

    @classmethod
    def parse(cls, data: Any) -> MetricBound:
        """Return the bound a JSON object describes; ``InvalidInput`` naming the bad field."""
        if not isinstance(data, Mapping):
            raise InvalidInput(f"a metric bound is an object, not {data!r}")
        unknown = set(data) - {"metric", "min", "max", "max_increase", "max_decrease"}
        if unknown:
            raise InvalidInput(f"unknown metric bound field(s): {', '.join(sorted(unknown))}")
        metric = data.get("metric")
        if not isinstance(metric, str) or not metric or len(metric) > 250:
            raise InvalidInput(f"a metric bound names its metric (a string), not {metric!r}")
        big = 1e300
        bound = cls(
            metric=metric,
            **{
                k: _optional(f"metric bound {metric!r} {k}", data.get(k), low=-big, high=big)
                for k in ("min", "max", "max_increase", "max_decrease")
            },
        )
        if all(v is None for v in (bound.min, bound.max, bound.max_increase, bound.max_decrease)):
            raise InvalidInput(f"metric bound {metric!r} sets no limit (min, max, max_increase…)")
        return bound


@dataclass(frozen=True)
class GateConfig:
    """What a canary step must satisfy to pass (see the module doc)."""

    min_requests: int = 20
    max_error_rate_increase: float = 0.05
    max_error_rate: float | None = None
    max_p99_ratio: float = 1.5
    p99_slack_ms: float = 5.0
    metrics: tuple[MetricBound, ...] = ()
    max_wait: int = 3
    on_no_traffic: str = "fail"


@dataclass(frozen=True)
class CanaryConfig:
    """A canary's steps (percent of traffic to the canary), interval and gate."""

    steps: tuple[float, ...] = DEFAULT_STEPS
    interval_s: float = 60.0
    gate: GateConfig = field(default_factory=GateConfig)

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> CanaryConfig:
        """Return the configuration in ``data`` (defaults for what it leaves out)."""
        data = dict(data or {})
        known = {"steps", "interval_s"} | set(GateConfig.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(
                f"unknown canary option(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        steps_in = data.get("steps", DEFAULT_STEPS)
        if isinstance(steps_in, (str, bytes)) or not isinstance(steps_in, Sequence):
            raise InvalidInput(f"canary steps are a list of percentages, not {steps_in!r}")
        if not 1 <= len(steps_in) <= MAX_STEPS:
            raise InvalidInput(f"a canary has 1 to {MAX_STEPS} steps, not {len(steps_in)}")
        steps = tuple(_number("a canary step", s, low=0.0, high=100.0) for s in steps_in)
        if any(s <= 0 for s in steps) or any(b <= a for a, b in itertools.pairwise(steps)):
            raise InvalidInput(f"canary steps must increase from above 0 to 100, not {steps}")
        if steps[-1] != 100:
            raise InvalidInput(
                f"the last canary step must be 100 (a passed step promotes): {steps}"
            )
        interval = _number(
            "the canary interval_s", data.get("interval_s", 60.0), low=0.0, high=MAX_INTERVAL_S
        )
        min_requests = data.get("min_requests", 20)
        max_wait = data.get("max_wait", 3)
        for label, value, high in (
            ("min_requests", min_requests, 10**9),
            ("max_wait", max_wait, 10**4),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
                raise InvalidInput(f"canary {label} must be an integer 0..{high}, not {value!r}")
        policy = data.get("on_no_traffic", "fail")
        if policy not in ("fail", "pass"):
            raise InvalidInput(f"canary on_no_traffic must be 'fail' or 'pass', not {policy!r}")
        metrics_in = data.get("metrics") or ()
        if isinstance(metrics_in, Mapping) or not isinstance(metrics_in, Sequence):
            raise InvalidInput(f"canary metrics are a list of bounds, not {metrics_in!r}")
        if len(metrics_in) > 50:
            raise InvalidInput("a canary gate has at most 50 metric bounds")
        gate = GateConfig(
            min_requests=min_requests,
            max_error_rate_increase=_number(
                "max_error_rate_increase", data.get("max_error_rate_increase", 0.05), low=0, high=1
            ),
            max_error_rate=_optional("max_error_rate", data.get("max_error_rate"), low=0, high=1),
            max_p99_ratio=_number(
                "max_p99_ratio", data.get("max_p99_ratio", 1.5), low=1.0, high=1e6
            ),
            p99_slack_ms=_number("p99_slack_ms", data.get("p99_slack_ms", 5.0), low=0, high=1e7),
            metrics=tuple(MetricBound.parse(m) for m in metrics_in),
            max_wait=max_wait,
            on_no_traffic=policy,
        )
        return cls(steps=steps, interval_s=interval, gate=gate)

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as flat JSON (what ``parse`` reads)."""
        gate = asdict(self.gate)
        gate["metrics"] = [{k: v for k, v in m.items() if v is not None} for m in gate["metrics"]]
        return {"steps": list(self.steps), "interval_s": self.interval_s, **gate}


@dataclass(frozen=True)
class GateResult:
    """A gate's verdict: passed True/False, or None when there is not enough data yet."""

    passed: bool | None
    reasons: tuple[str, ...]
    figures: Mapping[str, Any]


def _figures(stats: BackendStats | None) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "p99_ms": stats.p99_ms,
        "extra": dict(stats.extra),
    }


def evaluate_gate(
    gate: GateConfig,
    canary: BackendStats | None,
    stable: BackendStats | None,
    baseline: Mapping[str, Any] | None = None,
) -> GateResult:
    """Return whether the canary's figures pass ``gate`` against the stable's (see module).

    ``baseline`` is the stable's figures from an earlier step (``GateResult.figures
    ["stable"]``), used when ``stable`` has fewer than ``min_requests`` requests.
    """
    requests = canary.requests if canary is not None else 0
    reference = _figures(stable) if stable and stable.requests >= gate.min_requests else None
    if reference is None and baseline:
        reference = dict(baseline)
    figures = {"canary": _figures(canary), "stable": reference}
    if canary is None or requests < gate.min_requests:
        return GateResult(
            None, (f"canary had {requests} requests < {gate.min_requests} required",), figures
        )
    failures: list[str] = []
    rate = canary.error_rate
    if reference is not None:
        limit = reference["error_rate"] + gate.max_error_rate_increase
        if rate > limit + 1e-12:
            failures.append(
                f"canary error rate {rate:.2f} > stable {reference['error_rate']:.2f} "
                f"+ {gate.max_error_rate_increase:.2f}"
            )
        base_p99 = reference.get("p99_ms")
        if canary.p99_ms is not None and base_p99 is not None:
            ceiling = base_p99 * gate.max_p99_ratio + gate.p99_slack_ms
            if canary.p99_ms > ceiling:
                failures.append(
                    f"canary p99 {canary.p99_ms:.1f} ms > stable {base_p99:.1f} ms "
                    f"x {gate.max_p99_ratio:g} + {gate.p99_slack_ms:g} ms"
                )
    if gate.max_error_rate is not None and rate > gate.max_error_rate + 1e-12:
        failures.append(f"canary error rate {rate:.2f} > {gate.max_error_rate:.2f}")
    missing: list[str] = []
    for bound in gate.metrics:
        value = canary.extra.get(bound.metric)
        if value is None or not math.isfinite(value):
            missing.append(f"canary has not reported {bound.metric!r} yet")
            continue
        failures.extend(_check_bound(bound, float(value), reference))
    if failures:
        return GateResult(False, tuple(failures), figures)
    if missing:
        return GateResult(None, tuple(missing), figures)
    return GateResult(True, (), figures)


def _check_bound(
    bound: MetricBound, value: float, reference: Mapping[str, Any] | None
) -> list[str]:
    name = bound.metric
    out = []
    if bound.max is not None and value > bound.max:
        out.append(f"canary {name} {value:g} > max {bound.max:g}")
    if bound.min is not None and value < bound.min:
        out.append(f"canary {name} {value:g} < min {bound.min:g}")
    base = (reference or {}).get("extra", {}).get(name)
    if base is not None and math.isfinite(base):
        if bound.max_increase is not None and value > base + bound.max_increase:
            out.append(f"canary {name} {value:g} > stable {base:g} + {bound.max_increase:g}")
        if bound.max_decrease is not None and value < base - bound.max_decrease:
            out.append(f"canary {name} {value:g} < stable {base:g} - {bound.max_decrease:g}")
    return out
