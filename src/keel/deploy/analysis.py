"""A/B tests: their configuration, and the significance analysis of recorded outcomes.

Outcomes are ``binary`` (converted or not: 0/1) or ``continuous`` (revenue, a score).
Each variant other than the control (the stable version, variant A) is compared with the
control: binary outcomes by a two-proportion z-test (pooled), continuous ones by Welch's
t-test (unequal variances, ``scipy.stats.ttest_ind_from_stats``). With several variants
the significance level is split between the comparisons (Bonferroni). A winner is
declared only when every variant has at least ``min_samples`` outcomes and a comparison
is significant; the winner is then the best variant by mean for the test's ``goal``
(``maximize`` or ``minimize``) among the control and the variants that differ from it
significantly. Otherwise the verdict is "no difference yet" (or "not enough data yet").

The analysis reads per-variant aggregates (count, sum, sum of squares), so it costs the
same for ten outcomes or ten million.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from keel.errors import InvalidInput

__all__ = ["ABAnalysis", "ABConfig", "Comparison", "VariantFigures", "analyse"]

_FIELD = re.compile(r"[A-Za-z0-9_.\-]{1,128}")


@dataclass(frozen=True)
class ABConfig:
    """An A/B test: weights (control first), sticky key, outcome type, level, sample size."""

    weights: tuple[float, ...] = (50.0, 50.0)
    sticky_key: str = "x-request-key"
    outcome: str = "binary"
    goal: str = "maximize"
    alpha: float = 0.05
    min_samples: int = 100
    variants: tuple[str, ...] = ()  # further variants' model URIs, after the candidate

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None) -> ABConfig:
        """Return the configuration in ``data``; ``InvalidInput`` naming what is wrong."""
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(
                f"unknown A/B option(s): {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        variants = data.get("variants") or ()
        if isinstance(variants, str) or not isinstance(variants, Sequence):
            raise InvalidInput(f"A/B variants are a list of model URIs, not {variants!r}")
        if len(variants) > 8 or not all(isinstance(v, str) and v for v in variants):
            raise InvalidInput("A/B variants are at most 8 model URIs (strings)")
        count = 2 + len(variants)
        weights = data.get("weights", [100.0 / count] * count)
        if isinstance(weights, str) or not isinstance(weights, Sequence) or len(weights) != count:
            raise InvalidInput(
                f"A/B weights are {count} percentages (control, candidate, then each further "
                f"variant), not {weights!r}"
            )
        clean = []
        for w in weights:
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w <= 100:
                raise InvalidInput(f"an A/B weight is a percentage above 0, not {w!r}")
            clean.append(float(w))
        if abs(sum(clean) - 100) > 1e-6:
            raise InvalidInput(f"A/B weights sum to {sum(clean):g}, not 100")
        key = data.get("sticky_key", "x-request-key")
        if not isinstance(key, str) or not _FIELD.fullmatch(key):
            raise InvalidInput(
                f"the A/B sticky_key is a header or input field name (letters, digits, "
                f"_ . -, at most 128), not {key!r}"
            )
        outcome = data.get("outcome", "binary")
        if outcome not in ("binary", "continuous"):
            raise InvalidInput(f"A/B outcome is 'binary' or 'continuous', not {outcome!r}")
        goal = data.get("goal", "maximize")
        if goal not in ("maximize", "minimize"):
            raise InvalidInput(f"A/B goal is 'maximize' or 'minimize', not {goal!r}")
        alpha = data.get("alpha", 0.05)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 0.5:
            raise InvalidInput(f"A/B alpha is a significance level in (0, 0.5), not {alpha!r}")
        samples = data.get("min_samples", 100)
        if isinstance(samples, bool) or not isinstance(samples, int) or not 2 <= samples <= 10**9:
            raise InvalidInput(f"A/B min_samples is an integer from 2, not {samples!r}")
        return cls(tuple(clean), key, outcome, goal, float(alpha), samples, tuple(variants))

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as JSON (what ``parse`` reads)."""
        out = asdict(self)
        out["weights"], out["variants"] = list(self.weights), list(self.variants)
        return out


@dataclass(frozen=True)
class VariantFigures:
    """One variant's outcomes: count, mean and sample standard deviation."""

    variant: str
    n: int
    mean: float | None
    std: float | None


@dataclass(frozen=True)
class Comparison:
    """One variant against the control: the test, its statistic and p-value."""

    variant: str
    control: str
    test: str
    statistic: float | None
    p_value: float | None
    significant: bool


@dataclass(frozen=True)
class ABAnalysis:
    """An A/B test's figures per variant, its comparisons, and the verdict."""

    deployment: str
    rollout: int
    outcome: str
    alpha: float
    min_samples: int
    variants: tuple[VariantFigures, ...]
    comparisons: tuple[Comparison, ...]
    winner: str | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """Return the analysis as plain JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABAnalysis:
        """Return the analysis ``to_dict`` wrote."""
        return cls(
            deployment=data["deployment"],
            rollout=int(data["rollout"]),
            outcome=data["outcome"],
            alpha=float(data["alpha"]),
            min_samples=int(data["min_samples"]),
            variants=tuple(VariantFigures(**v) for v in data["variants"]),
            comparisons=tuple(Comparison(**c) for c in data["comparisons"]),
            winner=data["winner"],
            verdict=data["verdict"],
        )


def _figures(variant: str, n: int, total: float, squares: float) -> VariantFigures:
    if n == 0:
        return VariantFigures(variant, 0, None, None)
    mean = total / n
    var = max(squares - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    return VariantFigures(variant, n, mean, math.sqrt(var))


def _two_proportions(a: VariantFigures, b: VariantFigures) -> tuple[float | None, float | None]:
    from scipy.stats import norm

    pooled = (a.mean * a.n + b.mean * b.n) / (a.n + b.n)  # type: ignore[operator]
    se = math.sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n))
    if se == 0:  # every outcome identical in both: no evidence of a difference
        return None, 1.0
    z = (b.mean - a.mean) / se  # type: ignore[operator]
    return z, float(2 * norm.sf(abs(z)))


def _welch(a: VariantFigures, b: VariantFigures) -> tuple[float | None, float | None]:
    from scipy.stats import ttest_ind_from_stats

    if a.n < 2 or b.n < 2 or (a.std == 0 and b.std == 0):
        return None, 1.0 if a.mean == b.mean else None
    result = ttest_ind_from_stats(a.mean, a.std, a.n, b.mean, b.std, b.n, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def analyse(
    deployment: str,
    rollout: int,
    config: ABConfig,
    variants: Sequence[str],
    aggregates: Mapping[str, tuple[int, float, float]],
) -> ABAnalysis:
    """Return the analysis of ``aggregates`` (variant -> (count, sum, sum of squares)).

    ``variants`` lists the test's backend keys, the control first.
    """
    figures = tuple(_figures(v, *aggregates.get(v, (0, 0.0, 0.0))) for v in variants)
    control, others = figures[0], figures[1:]
    level = config.alpha / max(len(others), 1)
    test = "two-proportion z-test" if config.outcome == "binary" else "Welch t-test"
    comparisons = []
    for other in others:
        statistic = p_value = None
        if control.n and other.n:
            compare = _two_proportions if config.outcome == "binary" else _welch
            statistic, p_value = compare(control, other)
        significant = p_value is not None and p_value < level
        comparisons.append(
            Comparison(other.variant, control.variant, test, statistic, p_value, significant)
        )
    short = [f.variant for f in figures if f.n < config.min_samples]
    if short:
        counts = ", ".join(f"{f.variant} {f.n}" for f in figures)
        verdict = f"not enough data yet: {counts} of {config.min_samples} per variant"
        return ABAnalysis(
            deployment, rollout, config.outcome, config.alpha, config.min_samples,
            figures, tuple(comparisons), None, verdict,
        )  # fmt: skip
    winner = None
    if any(c.significant for c in comparisons):
        contenders = [control] + [
            f for f, c in zip(others, comparisons, strict=True) if c.significant
        ]
        pick = max if config.goal == "maximize" else min
        winner = pick(contenders, key=lambda f: f.mean).variant  # type: ignore[arg-type,return-value]
    if winner is None:
        verdict = f"no difference yet at alpha {config.alpha:g}"
    else:
        verdict = f"winner: {winner} at alpha {config.alpha:g}"
    return ABAnalysis(
        deployment, rollout, config.outcome, config.alpha, config.min_samples,
        figures, tuple(comparisons), winner, verdict,
    )  # fmt: skip
