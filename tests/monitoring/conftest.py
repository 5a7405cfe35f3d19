"""Monitoring fixtures: seeded frames with numeric and categorical columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def make_frame(
    rows: int, *, seed: int, shift: float = 0.0, new_category: bool = False
) -> pd.DataFrame:
    """Two numeric columns, a string column, a low-cardinality integer and a boolean."""
    rng = np.random.default_rng(seed)
    colours = ["red", "green", "blue", "black"] if new_category else ["red", "green", "blue"]
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, rows),
            "y": rng.exponential(1.0 + shift, rows),
            "colour": rng.choice(colours, rows),
            "level": rng.integers(0, 3, rows),
            "flag": rng.random(rows) < 0.3,
        }
    )


@pytest.fixture
def small_ref() -> pd.DataFrame:
    return make_frame(500, seed=1)


@pytest.fixture
def small_same() -> pd.DataFrame:
    return make_frame(400, seed=2)


@pytest.fixture
def large_ref() -> pd.DataFrame:
    return make_frame(20_000, seed=3)


@pytest.fixture
def large_same() -> pd.DataFrame:
    return make_frame(15_000, seed=4)
