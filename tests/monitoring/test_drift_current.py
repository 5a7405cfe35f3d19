"""keel.monitoring._current and _paired: numeric columns summed in blocks give what sorted
copies give (counts exactly, distances to rounding), and the distance is still scipy's."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

from keel.monitoring import _current, _paired, _parallel, drift
from keel.monitoring import stats as ks_stats
from keel.monitoring._drift import choose_method
from keel.monitoring._profile import profile_column
from keel.monitoring.results import DriftReport

TOL = 1e-9
SAME = 1e-12  # the blocks' sums are rounded in another order than one whole sum


def _both_paths(
    monkeypatch: pytest.MonkeyPatch, ref: pd.DataFrame, cur: pd.DataFrame, **options: object
) -> tuple[DriftReport, DriftReport]:
    """The report with the columns done one at a time (blocks) and on threads (copies)."""
    monkeypatch.setattr(_parallel, "SERIAL_ROWS", 10**12)
    serial = drift(ref, cur, **options)
    monkeypatch.setattr(_parallel, "SERIAL_ROWS", 0)
    threaded = drift(ref, cur, **options)
    return serial, threaded


def _assert_same(serial: DriftReport, threaded: DriftReport) -> None:
    assert serial.skipped == threaded.skipped
    assert [c.column for c in serial.columns] == [c.column for c in threaded.columns]
    for a, b in zip(serial.columns, threaded.columns, strict=True):
        assert (a.method, a.n_current, a.drifted, a.distribution) == (
            b.method,
            b.n_current,
            b.drifted,
            b.distribution,
        )
        assert a.statistic == pytest.approx(b.statistic, rel=SAME, abs=1e-300)
        assert a.p_value == b.p_value


def _frame(rng: np.random.Generator, rows: int, shift: float) -> pd.DataFrame:
    normal = rng.normal(shift, 1.0, rows)
    normal[:: 37 + int(shift)] = np.nan
    normal[5 :: 101 + int(shift)] = np.inf
    normal[7 :: 103 + int(shift)] = -np.inf
    return pd.DataFrame(
        {
            "normal": normal,
            "ints": rng.integers(-500, 500, rows) + int(100 * shift),
            "small": rng.normal(shift, 1.0, rows).astype(np.float32),
            "ties": rng.integers(0, 40, rows).astype(np.float64),
            "grow": np.sort(rng.exponential(1.0 + shift, rows)),  # stored in order
            "s": rng.choice(["a", "b", "c"], rows).astype(object),
        }
    )


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 64 values, so a few thousand rows are cut into dozens of blocks."""
    monkeypatch.setattr(_current, "BLOCK_VALUES", 64)
    monkeypatch.setattr(_current, "_CHUNK", 100)
    monkeypatch.setattr(_current, "_SAMPLE", 50)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize(
    ("n", "m"), [(1500, 1500), (2000, 3001), (4099, 1200), (1001, 1001), (1200, 70)]
)
def test_blocks_give_what_sorted_copies_give(
    monkeypatch: pytest.MonkeyPatch, n: int, m: int
) -> None:
    rng = np.random.default_rng(n * 7 + m)
    ref, cur = _frame(rng, n, 0.0), _frame(rng, m, 1.0)
    _assert_same(*_both_paths(monkeypatch, ref, cur))
    binned = {"normal": "psi", "ints": "jensenshannon", "small": "chisquare", "grow": "psi"}
    _assert_same(*_both_paths(monkeypatch, ref, cur, methods=binned))


@pytest.mark.usefixtures("small_blocks")
def test_blocks_give_scipys_distance(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    ref, cur = _frame(rng, 3000, 0.0), _frame(rng, 2500, 0.5)
    serial, _ = _both_paths(monkeypatch, ref, cur)
    for name in ("normal", "ints", "small", "grow"):
        a, b = ref[name].to_numpy(np.float64), cur[name].to_numpy(np.float64)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        expected = sp.wasserstein_distance(a, b) / np.std(a)
        assert serial.column(name).statistic == pytest.approx(expected, rel=TOL, abs=TOL)


@pytest.mark.usefixtures("small_blocks")
def test_awkward_current_columns_give_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    ref = pd.DataFrame({c: rng.normal(size=2000) for c in ("nan", "inf", "one", "huge", "far")})
    cur = pd.DataFrame(
        {
            "nan": np.full(900, np.nan),  # no usable value: skipped
            "inf": np.r_[np.full(890, np.inf), rng.normal(size=10)],
            "one": np.full(900, 0.25),  # one value: a single block
            "huge": np.r_[rng.normal(size=880), np.full(20, 1.7e308)],
            "far": rng.normal(50.0, 1.0, 900),  # every value above the reference
        }
    )
    serial, threaded = _both_paths(monkeypatch, ref, cur)
    _assert_same(serial, threaded)
    assert "nan" in serial.skipped
    assert serial.column("inf").n_current == 10


def test_the_benchmark_size_is_cut_into_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = 3 * _current.BLOCK_VALUES + 11
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"v": rng.normal(size=rows)})
    cur = pd.DataFrame({"v": rng.normal(0.2, 1.0, rows)})
    sizes: list[int] = []
    blocks = _current._blocks

    def recorded(values: np.ndarray, pivots: np.ndarray) -> Iterator[np.ndarray]:
        for block in blocks(values, pivots):
            sizes.append(len(block))
            yield block

    monkeypatch.setattr(_current, "_blocks", recorded)
    serial, threaded = _both_paths(monkeypatch, ref, cur)
    _assert_same(serial, threaded)
    assert len(sizes) == 8  # four of each side
    assert sum(sizes) == 2 * rows
    assert max(sizes) < 2 * _current.BLOCK_VALUES


@pytest.mark.parametrize(("n", "m"), [(1, 1), (7, 5), (100, 100), (999, 1234), (5000, 301)])
@pytest.mark.parametrize("parts", [1, 2, 7])
def test_wasserstein_parts_add_up_to_the_distance(n: int, m: int, parts: int) -> None:
    rng = np.random.default_rng(n + 13 * m + parts)
    a = np.sort(rng.normal(size=n))
    b = np.sort(rng.gamma(2.0, size=m))
    cuts = np.unique(np.r_[0, np.sort(rng.integers(0, m + 1, parts - 1)), m])
    total = sum(
        ks_stats.wasserstein_part(a, b[lo:hi].copy(), int(lo), m)
        for lo, hi in itertools.pairwise(cuts)
    )
    assert total == pytest.approx(ks_stats.wasserstein(a, b), rel=SAME, abs=1e-15)
    assert total == pytest.approx(sp.wasserstein_distance(a, b), rel=TOL, abs=TOL)


@pytest.mark.usefixtures("small_blocks")
@pytest.mark.parametrize("name", ["normal", "ints", "small", "ties", "grow"])
def test_the_reference_in_blocks_has_the_profile_of_its_sorted_copy(name: str) -> None:
    rng = np.random.default_rng(4)
    ref, cur = _frame(rng, 3001, 0.0), _frame(rng, 2000, 0.3)
    paired = _paired.paired_column(
        name, ref[name], cur[name], bins=30, quantiles=201, choose=choose_method
    )
    assert paired is not None
    blocks, copy = (
        paired[0].profile,
        profile_column(name, ref[name], bins=30, quantiles=201, max_categories=None).profile,
    )
    assert blocks.numeric is not None
    assert copy.numeric is not None
    assert blocks.numeric.mean == pytest.approx(copy.numeric.mean, rel=SAME, abs=1e-15)
    assert blocks.numeric.std == pytest.approx(copy.numeric.std, rel=SAME)
    same = dataclasses.replace(blocks.numeric, mean=copy.numeric.mean, std=copy.numeric.std)
    assert same == copy.numeric  # min, max, quantiles and histogram exactly
    assert dataclasses.replace(blocks, numeric=same) == copy  # counts, distinct, kind…


def test_columns_the_blocks_cannot_take_go_the_usual_way(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    rows = 3000
    ref = pd.DataFrame(
        {
            "few": rng.integers(0, 4, rows).astype(np.float64),  # compared as categories
            "nullable": pd.array(rng.integers(0, 100, rows), dtype="Int64"),
            "objects": pd.Series(rng.normal(size=rows), dtype=object),
            "huge": np.r_[rng.normal(size=rows - 10), np.full(10, 1.7e308)],  # sums overflow
            "ks": rng.normal(size=rows),
        }
    )
    cur = ref.copy()
    cur["ks"] = rng.normal(0.5, 1.0, rows)
    with np.errstate(over="ignore", invalid="ignore"):  # as drift() calls it
        for name in ref.columns:
            method = "ks" if name == "ks" else None
            paired = _paired.paired_column(
                name,
                ref[name],
                cur[name],
                bins=30,
                quantiles=201,
                choose=lambda kind, count, m=method: m or choose_method(kind, count),
            )
            assert paired is None, name
    _assert_same(*_both_paths(monkeypatch, ref, cur, methods={"ks": "ks"}))
