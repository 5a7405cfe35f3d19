"""Test helpers for the deployments control plane: registered versions and a data plane.

``RecordingApplier`` is a real ``TrafficApplier``: it keeps the plan it serves per
deployment, refuses plans naming a version it was told cannot load (leaving the old plan
serving, as the router must), and reports the figures a test sets per backend.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from keel.deploy.traffic import BackendStats, TrafficPlan
from keel.errors import InvalidInput

__all__ = ["RecordingApplier", "register_versions"]


@lru_cache(maxsize=1)
def _fitted() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(X, y), X


def register_versions(model: str = "churn", count: int = 4) -> None:
    """Register ``count`` versions of ``model`` (a real, small scikit-learn model, logged
    once) in the current store, so a server's data plane can load and warm them."""
    import keel

    fitted, X = _fitted()
    with keel.start_run(experiment="deploy-tests") as run:
        run.log_model(fitted, "model", input_example=X.head(3))
    for _ in range(count):
        keel.register_model(f"runs:/{run.run_id}/model", model)


class RecordingApplier:
    """A data plane double that serves plans in memory (see the module doc)."""

    def __init__(self) -> None:
        self.serving: dict[str, TrafficPlan] = {}
        self.applied: list[TrafficPlan] = []
        self.loaded: set[str] = set()
        self.broken: set[str] = set()
        self.figures: dict[str, dict[str, BackendStats]] = {}
        self.asked_since: list[float] = []
        self.attempts = 0

    async def apply(self, plan: TrafficPlan) -> None:
        self.attempts += 1
        for backend in plan.all_backends():
            if backend.key in self.broken:
                raise InvalidInput(f"{backend.key} failed its smoke prediction")
        self.loaded |= {b.key for b in plan.all_backends()}
        self.serving[plan.deployment] = plan
        self.applied.append(plan)

    async def remove(self, deployment: str) -> None:
        self.serving.pop(deployment, None)

    def stats(self, deployment: str, since: float) -> dict[str, BackendStats]:
        self.asked_since.append(since)
        return dict(self.figures.get(deployment, {}))

    def set_stats(self, deployment: str, *stats: BackendStats) -> None:
        self.figures[deployment] = {s.backend: s for s in stats}
