"""A pipeline run lists its steps in run order even when they started in one millisecond."""

from __future__ import annotations

import random

from keel.pipelines.entities import StepRunInfo
from keel.pipelines.records import _in_run_order

STEPS = ("load", "validate", "tune", "train", "evaluate", "register", "promote")


def step(node: str, start: int, *upstream: str) -> StepRunInfo:
    return StepRunInfo(
        node=node,
        step=node,
        run_id=f"run-{node}",
        status="cached",
        start_time=start,
        end_time=start,
        cache_key=None,
        upstream=upstream,
        params={},
    )


def test_cache_hits_recorded_in_one_millisecond_keep_the_dag_order() -> None:
    # a rerun's cache hits are recorded within a millisecond: the names alone would put
    # "evaluate" before "validate"
    steps = [step(STEPS[0], 100)] + [step(node, 101, STEPS[i]) for i, node in enumerate(STEPS[1:])]
    random.Random(0).shuffle(steps)
    assert [s.node for s in _in_run_order(steps)] == list(STEPS)


def test_time_comes_first_then_depth_then_name() -> None:
    steps = [step("b", 5), step("a", 5), step("z", 3), step("c", 5, "b")]
    assert [s.node for s in _in_run_order(steps)] == ["z", "a", "b", "c"]


def test_a_long_chain_and_records_naming_a_cycle_are_ordered_without_recursion() -> None:
    chain = [step(f"n{i}", 1, *([f"n{i - 1}"] if i else [])) for i in range(5000)]
    random.Random(1).shuffle(chain)
    assert [s.node for s in _in_run_order(chain)] == [f"n{i}" for i in range(5000)]
    looped = [step("a", 1, "b"), step("b", 1, "a"), step("c", 0)]
    assert [s.node for s in _in_run_order(looped)] == ["c", "a", "b"]
