"""Helpers for the serving tests: register a fitted estimator in the current Keel home."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keel


@dataclass(frozen=True)
class Registered:
    """A registered model: its URI, the fitted estimator and the data it was fitted on."""

    uri: str
    estimator: Any
    X: Any
    y: Any


def register(estimator: Any, X: Any, name: str) -> str:
    """Log ``estimator`` in a run with ``X[:5]`` as its example; register it; return its URI."""
    with keel.start_run(experiment="serving-tests") as run:
        run.log_model(estimator, "model", input_example=X[:5])
    version = keel.register_model(f"runs:/{run.run_id}/model", name)
    return f"models:/{name}/{version.version}"
