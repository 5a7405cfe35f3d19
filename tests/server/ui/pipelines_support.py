"""Module-level pipelines for the UI's pipeline pages (worker processes import them by name),
and a seed that runs them: one all finished, its rerun all cached, one with a failed step
and the steps it stopped, and a step whose logs and output carry hostile text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keel.pipelines as kp

HOSTILE = "<script>alert(1)</script>"


@kp.step
def load(n: int) -> list:
    print(f"loading {n} rows {HOSTILE}")
    return list(range(n))


@kp.step
def double(rows: list) -> list:
    return [2 * r for r in rows]


@kp.step
def square(rows: list) -> list:
    return [r * r for r in rows]


@kp.step
def report(a: list, b: list) -> dict:
    return {"sum_double": sum(a), "sum_square": sum(b), "note": HOSTILE}


@kp.step
def explode(rows: list, fail: bool = True) -> list:
    if fail:
        raise RuntimeError(f"exploded on {len(rows)} rows")
    return rows


@kp.pipeline
def diamond(n: int = 4):
    """load → (double, square) → report."""
    rows = load(n)
    report(double(rows), square(rows))


@kp.pipeline
def fragile(n: int = 3):
    """load → explode → double, beside load → square."""
    rows = load(n)
    double(explode(rows))
    square(load(n + 1))


@dataclass(frozen=True)
class PipelineHome:
    home: Path
    finished_run: str
    cached_run: str
    failed_run: str


def seed_pipelines(home: Path) -> PipelineHome:
    """Run the pipelines in the Keel home the environment points at (``home``)."""
    first = diamond.run({"n": 4}, max_workers=2)
    second = diamond.run({"n": 4}, max_workers=2)
    failed = fragile.run({"n": 3}, max_workers=2, raise_on_failure=False)
    return PipelineHome(home, first.run_id, second.run_id, failed.run_id)
