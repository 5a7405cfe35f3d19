"""The canary gate and its configuration: pure logic, no store."""

from __future__ import annotations

import pytest

from keel.deploy.canary import CanaryConfig, GateConfig, MetricBound, evaluate_gate
from keel.deploy.traffic import BackendStats
from keel.errors import InvalidInput


def _stats(key: str, requests: int, errors: int = 0, p99: float | None = 10.0, **extra: float):
    return BackendStats(key, requests, errors, p99, extra)


def test_defaults_are_the_documented_ones() -> None:
    config = CanaryConfig.parse(None)
    assert config.steps == (5, 25, 50, 100)
    assert config.interval_s == 60
    assert config.gate == GateConfig()
    assert CanaryConfig.parse(config.to_dict()) == config  # round trip through JSON


def test_a_healthy_canary_passes() -> None:
    result = evaluate_gate(GateConfig(), _stats("c", 100, 1), _stats("s", 1000, 5))
    assert result.passed is True
    assert result.reasons == ()
    assert result.figures["canary"]["error_rate"] == 0.01


def test_an_error_rate_above_stable_plus_the_threshold_fails() -> None:
    result = evaluate_gate(GateConfig(), _stats("c", 50, 10), _stats("s", 1000, 0))
    assert result.passed is False
    assert result.reasons == ("canary error rate 0.20 > stable 0.00 + 0.05",)
    edge = evaluate_gate(GateConfig(), _stats("c", 100, 5), _stats("s", 1000, 0))
    assert edge.passed is True  # exactly at the threshold passes


def test_an_absolute_error_ceiling_applies_even_without_a_stable() -> None:
    gate = GateConfig(max_error_rate=0.01)
    result = evaluate_gate(gate, _stats("c", 100, 2), None)
    assert result.passed is False
    assert "canary error rate 0.02 > 0.01" in result.reasons


def test_p99_is_judged_by_ratio_plus_slack() -> None:
    gate = GateConfig(max_p99_ratio=1.5, p99_slack_ms=5)
    ok = evaluate_gate(gate, _stats("c", 100, p99=19.9), _stats("s", 1000, p99=10.0))
    slow = evaluate_gate(gate, _stats("c", 100, p99=20.1), _stats("s", 1000, p99=10.0))
    assert ok.passed is True
    assert slow.passed is False
    assert slow.reasons == ("canary p99 20.1 ms > stable 10.0 ms x 1.5 + 5 ms",)
    unknown = evaluate_gate(gate, _stats("c", 100, p99=None), _stats("s", 1000, p99=10.0))
    assert unknown.passed is True  # no p99 measured: nothing to judge


def test_too_few_requests_is_not_enough_data() -> None:
    result = evaluate_gate(GateConfig(min_requests=20), _stats("c", 19, 19), _stats("s", 100))
    assert result.passed is None
    assert result.reasons == ("canary had 19 requests < 20 required",)
    assert evaluate_gate(GateConfig(), None, None).passed is None


def test_the_baseline_stands_in_for_a_stable_without_traffic() -> None:
    first = evaluate_gate(GateConfig(), _stats("c", 100), _stats("s", 900, 0, p99=10.0))
    baseline = first.figures["stable"]
    later = evaluate_gate(GateConfig(), _stats("c", 100, 30), _stats("s", 0), baseline)
    assert later.passed is False
    assert later.figures["stable"] == baseline


def test_extra_metric_bounds_absolute_and_relative() -> None:
    gate = GateConfig(
        metrics=(
            MetricBound("accuracy", min=0.8, max_decrease=0.02),
            MetricBound("drift", max=0.3),
        )
    )
    stable = _stats("s", 1000, accuracy=0.90, drift=0.1)
    good = evaluate_gate(gate, _stats("c", 100, accuracy=0.89, drift=0.2), stable)
    assert good.passed is True
    bad = evaluate_gate(gate, _stats("c", 100, accuracy=0.85, drift=0.5), stable)
    assert bad.passed is False
    assert set(bad.reasons) == {
        "canary accuracy 0.85 < stable 0.9 - 0.02",
        "canary drift 0.5 > max 0.3",
    }
    waiting = evaluate_gate(gate, _stats("c", 100, accuracy=0.9), stable)
    assert waiting.passed is None
    assert waiting.reasons == ("canary has not reported 'drift' yet",)


@pytest.mark.parametrize(
    "config",
    [
        {"steps": []},
        {"steps": [0, 100]},
        {"steps": [50, 50, 100]},
        {"steps": [10, 90]},
        {"steps": [10, 101]},
        {"steps": ["10", 100]},
        {"steps": 100},
        {"steps": [True, 100]},
        {"interval_s": float("inf")},
        {"interval_s": 10**9},
        {"min_requests": -1},
        {"min_requests": 2.5},
        {"max_wait": 10**6},
        {"max_error_rate_increase": 2},
        {"max_p99_ratio": 0.5},
        {"p99_slack_ms": -1},
        {"on_no_traffic": None},
        {"metrics": {"metric": "a", "max": 1}},
        {"metrics": [{"metric": "", "max": 1}]},
        {"metrics": [{"metric": "a", "max": "1"}]},
        {"metrics": [{"metric": "a", "max": 1, "avg": 2}]},
        {"metrics": [{"metric": "a", "max": 1}] * 51},
        {"unknown": 1},
    ],
)
def test_bad_configuration_is_refused_naming_the_option(config: dict) -> None:
    with pytest.raises(InvalidInput):
        CanaryConfig.parse(config)
