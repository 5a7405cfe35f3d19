"""A Keel home with real deployments for the deployments pages' tests.

Three scikit-learn versions of ``churn`` and one of a model with a hostile name are
registered with their artifacts, and five deployments are made through the controller on
the SQL store: a canary that passed its first gate (now at 50%, step 2 of 3), an A/B test
with outcomes recorded, a shadow that ended with its agreement kept, a hand-made split,
and one serving the hostile model with a hostile description. The controller's data plane
here is ``FixedPlane``: it serves plans in memory and reports the figures the seed sets,
so gates and the shadow see real ``BackendStats``.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from keel.deploy.traffic import BackendStats, TrafficPlan

__all__ = ["HOSTILE", "HOSTILE_MODEL", "DeployHome", "FixedPlane", "seed_deployments"]

HOSTILE = "<script>alert(1)</script>"
HOSTILE_MODEL = "<img src=x onerror=alert(2)>"  # a legal model name: no '/', '@' or ':'
HOUR_S = 3600


class FixedPlane:
    """A data plane (``TrafficApplier``) serving plans in memory with set figures."""

    def __init__(self) -> None:
        self.serving: dict[str, TrafficPlan] = {}
        self.figures: dict[str, dict[str, BackendStats]] = {}

    async def apply(self, plan: TrafficPlan) -> None:
        self.serving[plan.deployment] = plan

    async def remove(self, deployment: str) -> None:
        self.serving.pop(deployment, None)

    def stats(self, deployment: str, since: float) -> dict[str, BackendStats]:
        return dict(self.figures.get(deployment, {}))


@dataclass(frozen=True)
class DeployHome:
    """The seeded home and the canary's step start (epoch seconds)."""

    home: Path
    canary_step_started: float


def _register(name: str, versions: int) -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import keel

    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    for c in range(1, versions + 1):
        with keel.start_run(experiment="deploy-ui", run_name=f"{name[:20]}-{c}") as run:
            run.log_model(LogisticRegression(C=float(c)).fit(X, y), "model", input_example=X[:2])
        keel.register_model(f"runs:/{run.run_id}/model", name)


def seed_deployments(home: Path) -> DeployHome:
    """Fill the current Keel home (``KEEL_HOME`` = ``home``) as the module doc says."""
    from keel.deploy.controller import DeploymentController
    from keel.deploy.entities import Outcome
    from keel.stores import current_stores

    _register("churn", 3)
    _register(HOSTILE_MODEL, 1)
    plane = FixedPlane()
    control = DeploymentController(current_stores().deployments, plane)
    store = current_stores().deployments
    good = {"errors": 0, "p99_ms": 12.5}

    async def seed() -> float:
        await control.create("churn-prod", "models:/churn/1", environment="prod")
        await control.deploy(
            "churn-prod",
            "models:/churn/2",
            strategy="canary",
            config={"steps": [10, 50, 100], "interval_s": HOUR_S, "min_requests": 50},
        )
        plane.figures["churn-prod"] = {
            "churn/1": BackendStats("churn/1", requests=900, **good),
            "churn/2": BackendStats("churn/2", requests=100, errors=1, p99_ms=14.0),
        }
        # The first gate is judged once its hour is over; its figures pass.
        started = store.get_deployment("churn-prod").rollout.step_started_at / 1000
        await control.tick(now=started + HOUR_S + 1)

        await control.create("churn-ab", "models:/churn/1", environment="staging")
        await control.deploy(
            "churn-ab", "models:/churn/3", strategy="ab", config={"min_samples": 50}
        )
        # 30% of 200 converted on the control, 45% of 200 on the variant: significant.
        outcomes = [Outcome(float(i < 60), variant="churn/1") for i in range(200)]
        outcomes += [Outcome(float(i < 90), variant="churn/3") for i in range(200)]
        store.record_outcomes("churn-ab", outcomes)

        await control.create("churn-shadow", "models:/churn/1", environment="staging")
        await control.deploy("churn-shadow", "models:/churn/3", strategy="shadow")
        plane.figures["churn-shadow"] = {
            "churn/1": BackendStats("churn/1", requests=500, **good),
            "churn/3": BackendStats("churn/3", requests=480, errors=0, p99_ms=9.0,
                                    extra={"agreement": 0.9625}),
        }  # fmt: skip
        await control.abort("churn-shadow")

        await control.create("churn-manual", "models:/churn/1", environment="prod")
        await control.set_traffic("churn-manual", {"churn/1": 66.5, "churn/3": 33.5})

        await control.create(
            "hostile", f"models:/{HOSTILE_MODEL}/1", environment="prod", description=HOSTILE
        )
        return store.get_deployment("churn-prod").rollout.step_started_at / 1000

    # In a thread of its own: where Playwright's sync API is open, this thread's asyncio
    # "running loop" is Playwright's, and asyncio.run() refuses to start here.
    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(asyncio.run, seed()).result()
    return DeployHome(home=home, canary_step_started=started)
