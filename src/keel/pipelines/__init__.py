"""Pipelines: ``@step`` and ``@pipeline`` functions, a cached DAG, local executors, records.

    @keel.step
    def load(path: str) -> pd.DataFrame: ...

    @keel.step(retries=2, timeout=600)
    def train(data: pd.DataFrame, n_estimators: int = 100) -> RandomForestClassifier: ...

    @keel.pipeline
    def churn(path: str = "data/churn.csv", n_estimators: int = 100):
        train(load(path), n_estimators=n_estimators)

    run = churn(n_estimators=200)       # a PipelineRunInfo; rerun it and steps are "cached"

The names below load their modules on first use, so ``import keel.pipelines`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Pipeline",
    "PipelineFailed",
    "PipelineRunInfo",
    "PipelineSummary",
    "Step",
    "StepFailed",
    "StepOptions",
    "StepOutput",
    "StepRunInfo",
    "get_pipeline_run",
    "list_pipeline_runs",
    "list_pipelines",
    "load_pipeline",
    "load_step_output",
    "pipeline",
    "resume_pipeline",
    "run_pipeline",
    "step",
]

_EXPORTS = {
    "Pipeline": "keel.pipelines.definition",
    "PipelineFailed": "keel.pipelines.errors",
    "PipelineRunInfo": "keel.pipelines.entities",
    "PipelineSummary": "keel.pipelines.entities",
    "Step": "keel.pipelines.steps",
    "StepFailed": "keel.pipelines.errors",
    "StepOptions": "keel.pipelines.steps",
    "StepOutput": "keel.pipelines.graph",
    "StepRunInfo": "keel.pipelines.entities",
    "get_pipeline_run": "keel.pipelines.api",
    "list_pipeline_runs": "keel.pipelines.api",
    "list_pipelines": "keel.pipelines.api",
    "load_pipeline": "keel.pipelines.api",
    "load_step_output": "keel.pipelines.api",
    "pipeline": "keel.pipelines.definition",
    "resume_pipeline": "keel.pipelines.api",
    "run_pipeline": "keel.pipelines.api",
    "step": "keel.pipelines.steps",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
