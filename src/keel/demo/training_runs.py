"""Runs of the demo's training pipeline, with their step outputs and trial runs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keel
from keel.demo import pipeline_report
from keel.demo.names import PIPELINE

if TYPE_CHECKING:
    from keel.pipelines.entities import PipelineRunInfo

__all__ = ["EXPERIMENT", "TrainingRun", "run_training", "trials_of"]

EXPERIMENT = PIPELINE  # a pipeline's runs (and its steps' and trials') are in its experiment


@dataclass(frozen=True, kw_only=True)
class TrainingRun:
    """One run of the training pipeline: its record, step outputs and what it made."""

    info: PipelineRunInfo
    outputs: dict[str, Any]
    trial_run_ids: tuple[str, ...]
    seconds: float

    @property
    def version(self) -> int | None:
        """The version its register step made (None if it did not get that far)."""
        registered = self.outputs.get("register")
        return None if registered is None else int(registered["version"])

    @property
    def promotion(self) -> dict[str, Any] | None:
        """The promotion record its promote step returned."""
        return self.outputs.get("promote")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able summary of this run."""
        return {
            "run_id": self.info.run_id,
            "status": self.info.status,
            "steps": {s.node: s.status for s in self.info.steps},
            "trial_run_ids": list(self.trial_run_ids),
            "version": self.version,
            "promotion": self.promotion,
            "seconds": self.seconds,
        }


def run_training(params: dict[str, Any]) -> TrainingRun:
    """Run the training pipeline with ``params``; return it with its outputs and trials."""
    from keel.demo.training import training

    began = time.perf_counter()
    info = keel.run_pipeline(training, params)
    seconds = time.perf_counter() - began
    return TrainingRun(
        info=info,
        outputs=pipeline_report.step_outputs(info),
        trial_run_ids=tuple(r.run_id for r in trials_of(info)),
        seconds=seconds,
    )


def trials_of(info: PipelineRunInfo) -> list[keel.Run]:
    """Return the trial runs of a pipeline run's tune step (its own, or those of the run
    it was cached from), oldest first."""
    step = info.step("tune")
    parent = step.cached_from or step.run_id
    found = keel.search_runs(
        experiment=EXPERIMENT,
        filter=f"attributes.parent_run_id = '{parent}'",
        max_results=1000,
    )
    return sorted(found, key=lambda r: int(r.tags.get("keel.hpo.trial", "0")))
