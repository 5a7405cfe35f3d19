"""The errors a pipeline run raises on top of Keel's hierarchy (``keel.errors``).

A definition problem (a missing input, a parameter of the wrong type, an output annotated
as something that cannot be stored) is an ``InvalidInput`` naming the step, raised when the
pipeline is traced. What goes wrong while steps run is one of these::

    KeelError
    ├── StepFailed        a step raised, timed out or returned what cannot be stored
    └── PipelineFailed    a run ended with failed steps (``.run_id``, ``.failed``)
"""

from __future__ import annotations

from typing import ClassVar

from keel.errors import KeelError

__all__ = ["PipelineFailed", "StepFailed"]


class StepFailed(KeelError):
    """A step raised, timed out, or produced an output Keel cannot store."""

    error_code: ClassVar[str] = "STEP_FAILED"

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"step {step!r} failed: {message}")
        self.step = step


class PipelineFailed(KeelError):
    """A pipeline run ended failed; ``failed`` names its failed steps in run order."""

    error_code: ClassVar[str] = "PIPELINE_FAILED"

    def __init__(self, message: str, *, run_id: str, failed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.failed = failed
