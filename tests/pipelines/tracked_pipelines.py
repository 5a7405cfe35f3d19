"""Module-level pipelines whose steps log to their own runs (workers import them by name)."""

from __future__ import annotations

import keel
import keel.pipelines as kp


@kp.step
def make_data(n: int) -> dict:
    return {"x": [[float(i), float(i % 3)] for i in range(n)], "y": [i % 2 for i in range(n)]}


@kp.step
def train(data: dict, c: float = 1.0) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c).fit(data["x"], data["y"])
    score = float(model.score(data["x"], data["y"]))
    keel.log_metric("train_accuracy", score)  # the step's own run is the active run
    keel.log_param("solver", model.solver)
    keel.active_run().log_model(model, "model", registered_model_name="tracked-model")
    with keel.start_run(run_name="trial") as child:  # a child of the step's run
        child.log_metric("inner", 1.0)
    return score


@kp.pipeline
def tracked(n: int = 40):
    """make_data → train, train logging a metric, a model version and a child run."""
    train(make_data(n))
