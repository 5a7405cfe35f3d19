"""A pipeline for lineage tests (workers import it by name): a step reading a declared
input file, and a step that trains and registers a model from its output."""

from __future__ import annotations

from pathlib import Path

import keel
import keel.pipelines as kp


@kp.step(inputs=("rows.csv",))
def read_rows(path: str = "rows.csv") -> dict:
    values = [float(v) for v in Path(path).read_text(encoding="utf-8").split()]
    return {"x": [[v, v % 3] for v in values], "y": [int(v) % 2 for v in values]}


@kp.step
def fit(data: dict) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(data["x"], data["y"])
    keel.active_run().log_model(
        model, "model", input_example=data["x"][:2], registered_model_name="lineage-model"
    )
    return float(model.score(data["x"], data["y"]))


@kp.pipeline
def from_file():
    """read_rows (rows.csv is its declared input dataset) → fit (registers a version)."""
    fit(read_rows())
