"""keel.monitoring._parallel: a column's two sides on two threads, one column in flight a lane."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from keel.errors import InvalidInput
from keel.monitoring import _parallel, drift, profile
from keel.monitoring._frames import numeric_values

NAMES = [f"col{i}" for i in range(9)]


class _Flight:
    """Records which columns have a side running, and the most seen at once."""

    def __init__(self, *, together: bool) -> None:
        # Both sides of a column must meet here: proof that they ran at the same time.
        self.meet = {n: threading.Barrier(2, timeout=30) for n in NAMES} if together else {}
        self.lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.most_columns = 0
        self.most_sides = 0
        self.threads: set[int] = set()

    def side(self, name: str, tag: str) -> str:
        with self.lock:
            self.running[name] = self.running.get(name, 0) + 1
            self.most_columns = max(self.most_columns, len(self.running))
            self.most_sides = max(self.most_sides, sum(self.running.values()))
            self.threads.add(threading.get_ident())
        if self.meet:
            self.meet[name].wait()
        time.sleep(0.002)  # long enough for another column to start meanwhile, if it may
        with self.lock:
            self.running[name] -= 1
            if not self.running[name]:
                del self.running[name]
        return f"{tag}:{name}"


@pytest.mark.parametrize(("cpus", "columns_in_flight"), [(1, 1), (2, 1), (3, 1), (4, 2), (16, 2)])
def test_sides_run_together_and_columns_in_lanes(
    monkeypatch: pytest.MonkeyPatch, cpus: int, columns_in_flight: int
) -> None:
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: cpus)
    flight = _Flight(together=cpus >= 2)
    out = _parallel.map_column_sides(
        lambda n: flight.side(n, "ref"),
        lambda n: flight.side(n, "cur"),
        lambda n, a, b: (n, a, b),
        NAMES,
    )
    assert out == [(n, f"ref:{n}", f"cur:{n}") for n in NAMES]  # in order, sides paired
    assert flight.most_columns <= columns_in_flight
    # With two cores or more the barrier has already shown each column's sides meeting.
    assert flight.most_sides <= 2 * columns_in_flight
    assert 1 + (cpus > 1) <= len(flight.threads) <= min(cpus, 2 * columns_in_flight)


@pytest.mark.parametrize("failing", ["first", "second", "combine"])
def test_an_error_in_any_part_propagates(monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 2)

    def part(which: str) -> Callable[..., object]:
        def run(*args: object) -> object:
            if which == failing and args[0] == "col3":
                raise InvalidInput(f"{which} failed on col3")
            return args[0]

        return run

    with pytest.raises(InvalidInput, match=f"{failing} failed on col3"):
        _parallel.map_column_sides(part("first"), part("second"), part("combine"), NAMES)


def test_no_columns_gives_no_results() -> None:
    assert _parallel.map_column_sides(str, str, lambda n, a, b: n, []) == []
    assert _parallel.map_columns(str, []) == []


@pytest.mark.parametrize(("cpus", "columns_in_flight"), [(1, 1), (2, 2), (3, 3), (16, 4)])
def test_whole_columns_run_side_by_side_on_up_to_four_threads(
    monkeypatch: pytest.MonkeyPatch, cpus: int, columns_in_flight: int
) -> None:
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: cpus)
    flight = _Flight(together=False)
    assert _parallel.map_columns(lambda n: flight.side(n, "col"), NAMES) == [
        f"col:{n}" for n in NAMES
    ]
    assert flight.most_columns <= columns_in_flight
    assert len(flight.threads) <= columns_in_flight


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_drift_is_the_same_on_any_number_of_threads(
    monkeypatch: pytest.MonkeyPatch, cpus: int
) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    ref = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 4, n),
            "s": rng.choice(["x", "y", "z"], n).astype(object),
            "t": pd.to_datetime(rng.integers(0, 10**9, n), unit="s"),
        }
    )
    cur = ref.assign(a=ref["a"] + 0.5, s=ref["s"].where(ref["s"] != "x", "w"))
    stored = profile(ref)
    monkeypatch.setattr(_parallel, "SERIAL_ROWS", 0)  # these few rows on threads too
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 1)
    expected = drift(ref, cur), drift(stored, cur)
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: cpus)
    for report, alone in zip((drift(ref, cur), drift(stored, cur)), expected, strict=True):
        assert report.columns == alone.columns
        assert report.skipped == alone.skipped
        assert [c.column for c in report.columns] == ["a", "b", "s"]
        assert "t" in report.skipped
    assert expected[1].columns[0].approximate  # the profile's path was taken


def test_small_frames_are_compared_on_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 4)
    seen: set[int] = set()

    def recorded(series: pd.Series) -> object:
        seen.add(threading.get_ident())
        return numeric_values(series)

    monkeypatch.setattr("keel.monitoring._profile.numeric_values", recorded)
    monkeypatch.setattr("keel.monitoring._current.numeric_values", recorded)
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({c: rng.normal(size=3000) for c in "abcd"})
    cur = ref + 0.1
    drift(ref, cur, methods=dict.fromkeys("abcd", "ks"))  # KS: both sides sorted copies
    assert seen == {threading.get_ident()}
    monkeypatch.setattr(_parallel, "SERIAL_ROWS", 3000)
    drift(ref, cur, methods=dict.fromkeys("abcd", "ks"))
    assert len(seen) > 1
