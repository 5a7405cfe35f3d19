"""Pipelines: ``@step`` and ``@pipeline`` functions, a cached DAG, local executors, records.

    @keel.step
    def load(path: str) -> pd.DataFrame: ...

    @keel.step(retries=2, timeout=600)
    def train(data: pd.DataFrame, n_estimators: int = 100) -> RandomForestClassifier: ...

    @keel.pipeline
    def churn(path: str = "data/churn.csv", n_estimators: int = 100):
        train(load(path), n_estimators=n_estimators)

    run = churn(n_estimators=200)       # a PipelineRunInfo; rerun it and steps are "cached"

Schedules and triggers run pipelines by cron and on events (``schedule_pipeline``,
``add_trigger``, ``fire_trigger``; ``keel server`` starts the runs).

The names below load their modules on first use, so ``import keel.pipelines`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Dispatch",
    "Pipeline",
    "PipelineFailed",
    "PipelineRunInfo",
    "PipelineSchedule",
    "PipelineSummary",
    "PipelineTrigger",
    "Step",
    "StepFailed",
    "StepOptions",
    "StepOutput",
    "StepRunInfo",
    "add_trigger",
    "delete_schedule",
    "delete_trigger",
    "fire_trigger",
    "get_pipeline_run",
    "list_dispatches",
    "list_pipeline_runs",
    "list_pipelines",
    "list_schedules",
    "list_triggers",
    "load_pipeline",
    "load_step_output",
    "pause_schedule",
    "pipeline",
    "resume_pipeline",
    "resume_schedule",
    "run_pipeline",
    "schedule_pipeline",
    "step",
]

_EXPORTS = {
    "Dispatch": "keel.pipelines.schedules",
    "Pipeline": "keel.pipelines.definition",
    "PipelineFailed": "keel.pipelines.errors",
    "PipelineRunInfo": "keel.pipelines.entities",
    "PipelineSchedule": "keel.pipelines.schedules",
    "PipelineSummary": "keel.pipelines.entities",
    "PipelineTrigger": "keel.pipelines.schedules",
    "Step": "keel.pipelines.steps",
    "StepFailed": "keel.pipelines.errors",
    "StepOptions": "keel.pipelines.steps",
    "StepOutput": "keel.pipelines.graph",
    "StepRunInfo": "keel.pipelines.entities",
    "add_trigger": "keel.pipelines.schedules_api",
    "delete_schedule": "keel.pipelines.schedules_api",
    "delete_trigger": "keel.pipelines.schedules_api",
    "fire_trigger": "keel.pipelines.triggers",
    "get_pipeline_run": "keel.pipelines.api",
    "list_dispatches": "keel.pipelines.schedules_api",
    "list_pipeline_runs": "keel.pipelines.api",
    "list_pipelines": "keel.pipelines.api",
    "list_schedules": "keel.pipelines.schedules_api",
    "list_triggers": "keel.pipelines.schedules_api",
    "load_pipeline": "keel.pipelines.api",
    "load_step_output": "keel.pipelines.api",
    "pause_schedule": "keel.pipelines.schedules_api",
    "pipeline": "keel.pipelines.definition",
    "resume_pipeline": "keel.pipelines.api",
    "resume_schedule": "keel.pipelines.schedules_api",
    "run_pipeline": "keel.pipelines.api",
    "schedule_pipeline": "keel.pipelines.schedules_api",
    "step": "keel.pipelines.steps",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
