"""Per-backend stats windows: counts per window, p99 against numpy, bounded memory."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from keel.deploy.serving_stats import BackendWindow, weighted_quantile
from keel.errors import InvalidInput


class Clock:
    """A settable wall clock (epoch seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_are_per_window_of_whole_seconds() -> None:
    clock = Clock()
    window = BackendWindow("m/1", clock=clock)
    for _ in range(5):
        window.success(2.0)
    window.error()
    window.rejected()
    clock.now += 10.4
    for _ in range(3):
        window.success(4.0)
    window.error()
    everything = window.stats(0)
    assert (everything.backend, everything.requests, everything.errors) == ("m/1", 11, 2)
    assert everything.extra["rejected"] == 1
    recent = window.stats(clock.now - 1)
    assert (recent.requests, recent.errors, recent.p99_ms) == (4, 1, 4.0)
    assert recent.extra["rejected"] == 0
    later = window.stats(clock.now + 5)
    assert (later.requests, later.errors, later.p99_ms) == (0, 0, None)
    assert later.error_rate == 0


def test_p99_equals_numpy_inverted_cdf_when_every_latency_is_kept() -> None:
    clock = Clock()
    window = BackendWindow("m/1", clock=clock, samples=10_000)
    rng = np.random.default_rng(7)
    latencies = rng.lognormal(1.0, 0.8, size=3_000)
    for i, value in enumerate(latencies):
        if i % 1000 == 0:
            clock.now += 1
        window.success(float(value))
    got = window.stats(0).p99_ms
    assert got == pytest.approx(np.quantile(latencies, 0.99, method="inverted_cdf"))


def test_the_reservoir_bounds_memory_and_weights_busy_seconds_more() -> None:
    clock = Clock()
    window = BackendWindow("m/1", clock=clock, samples=50)
    for _ in range(5_000):  # a busy second of slow requests
        window.success(100.0)
    clock.now += 1
    for _ in range(50):  # a quiet second of fast ones
        window.success(1.0)
    assert all(len(b.latencies) <= 50 for b in window._buckets)
    stats = window.stats(0)
    assert stats.requests == 5_050
    # 99 % of the requests were slow: an unweighted mix of samples would say 1 ms
    assert stats.p99_ms == 100.0


def test_old_seconds_are_forgotten_after_the_retention() -> None:
    clock = Clock()
    window = BackendWindow("m/1", clock=clock, retention=60)
    window.success(1.0)
    clock.now += 30
    window.success(1.0)
    clock.now += 45
    window.success(1.0)
    assert window.stats(0).requests == 2
    assert len(window._buckets) == 2


def test_a_clock_stepping_back_counts_into_the_latest_second() -> None:
    clock = Clock()
    window = BackendWindow("m/1", clock=clock)
    window.success(1.0)
    clock.now -= 5
    window.success(1.0)
    assert window.stats(0).requests == 2


def test_extras_sum_and_agreement_is_agreed_over_compared() -> None:
    window = BackendWindow("m/1", clock=Clock())
    for agreed in (1, 1, 0, 1):
        window.add("compared")
        window.add("agreed", agreed)
    window.add("dropped", 2)
    extra = window.stats(0).extra
    assert extra["compared"] == 4
    assert extra["dropped"] == 2
    assert math.isclose(extra["agreement"], 0.75)


def test_concurrent_recording_and_reading_lose_nothing() -> None:
    window = BackendWindow("m/1")
    barrier = threading.Barrier(4)

    def record() -> None:
        barrier.wait()
        for _ in range(2_000):
            window.success(1.0)

    threads = [threading.Thread(target=record) for _ in range(3)]
    for t in threads:
        t.start()
    barrier.wait()
    for _ in range(50):
        window.stats(0)
    for t in threads:
        t.join()
    assert window.stats(0).requests == 6_000


@pytest.mark.parametrize("since", [math.nan, math.inf, -math.inf, "0", None, True, [1]])
def test_a_bad_since_is_invalid_input(since: object) -> None:
    with pytest.raises(InvalidInput, match="since"):
        BackendWindow("m/1").stats(since)  # type: ignore[arg-type]


def test_bad_window_settings_and_quantile_arguments_are_refused() -> None:
    for options in ({"retention": 0}, {"samples": 0}):
        with pytest.raises(InvalidInput):
            BackendWindow("m/1", **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        weighted_quantile(np.array([]), np.array([]), 0.5)
    with pytest.raises(InvalidInput):
        weighted_quantile(np.array([1.0]), np.array([1.0, 2.0]), 0.5)
    with pytest.raises(InvalidInput):
        weighted_quantile(np.array([1.0]), np.array([1.0]), 1.5)


def test_weighted_quantile_matches_repeating_values_by_their_weights() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=200)
    weights = rng.integers(1, 6, size=200)
    repeated = np.repeat(values, weights)
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        expected = np.quantile(repeated, q, method="inverted_cdf")
        assert weighted_quantile(values, weights.astype(float), q) == expected
