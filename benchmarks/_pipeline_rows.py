"""The figures-table rows of (j): pipeline overhead, Keel vs Prefect on the same flows."""

from __future__ import annotations

from _report import Row, Target

__all__ = ["pipeline_rows"]


def pipeline_rows() -> tuple[Row, ...]:
    """Per-step overhead of a chain and a fan-out, and a cache hit's cost, with the targets."""
    per_step = {"unit": "ms per step", "higher_is_better": False}
    return (
        Row(
            "j",
            "keel",
            "keel chain, local",
            "chain_local_ms_per_step",
            **per_step,
            target=Target("< 10 ms", max_value=10.0),
            note="{chain_steps} steps on worker processes (forkserver), cache off",
        ),
        Row(
            "j",
            "keel",
            "keel chain, inline",
            "chain_inline_ms_per_step",
            **per_step,
            note="the same in this process: engine and records without IPC",
        ),
        Row(
            "j",
            "keel",
            "keel cache hit",
            "cache_hit_ms",
            **per_step,
            target=Target("< 5 ms", max_value=5.0),
            note="the chain again, every step a cache hit",
        ),
        Row(
            "j",
            "keel",
            "keel fan-out, local",
            "fan_local_ms_per_step",
            **per_step,
            note="{fan_steps:,} independent steps, cache off",
        ),
        Row(
            "j",
            "prefect",
            "prefect chain",
            "chain_ms_per_step",
            **per_step,
            keel_figure="chain_local_ms_per_step",
            target=Target("keel ≥ 5×", min_speedup=5),
            note="@task calls in a @flow, ephemeral server (SQLite)",
        ),
        Row(
            "j",
            "prefect",
            "prefect cache hit",
            "cache_hit_ms",
            **per_step,
            note="cache_policy=INPUTS + TASK_SOURCE, persisted results",
        ),
        Row(
            "j",
            "prefect",
            "prefect fan-out",
            "fan_ms_per_step",
            **per_step,
            keel_figure="fan_local_ms_per_step",
            target=Target("keel ≥ 5×", min_speedup=5),
            note="{fan_steps:,} task.submit on the thread-pool task runner",
        ),
    )
