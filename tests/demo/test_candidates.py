"""The demo's data split, search space and loss curves, checked against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss

from keel.demo.candidates import evaluate, load_data, loss_curve
from keel.demo.search_space import FAMILIES, build, suggest

PARAMS = {
    "rf": {"family": "random_forest", "n_estimators": 50, "max_depth": 4},
    "gb": {"family": "gradient_boosting", "learning_rate": 0.1, "n_estimators": 75, "max_depth": 3},
    "logreg": {"family": "logistic_regression", "C": 1.0},
}


def test_the_search_space_suggests_all_three_families_within_their_bounds() -> None:
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        params = suggest(study.ask())
        seen.add(params["family"])
        if params["family"] == "random_forest":
            assert 25 <= params["n_estimators"] <= 150
            assert 2 <= params["max_depth"] <= 10
        elif params["family"] == "logistic_regression":
            assert 0.01 <= params["C"] <= 100
    assert seen == set(FAMILIES)


def test_the_split_is_stratified_and_deterministic() -> None:
    a, b = load_data(), load_data()
    assert (len(a.X_train), len(a.X_val)) == (455, 114)
    assert a.X_val.index.equals(b.X_val.index)
    assert a.y_train.mean() == pytest.approx(a.y_val.mean(), abs=0.01)
    assert a.class_names == ("malignant", "benign")


@pytest.mark.parametrize("name", ["rf", "gb"])
def test_loss_curve_matches_sklearn_log_loss_step_by_step(name: str) -> None:
    data = load_data()
    model = build(PARAMS[name]).fit(data.X_train, data.y_train)

    curve = loss_curve(model, data.X_val, data.y_val)

    assert [step for step, _ in curve] == list(range(1, PARAMS[name]["n_estimators"] + 1))
    if name.startswith("gb"):
        staged = list(model.staged_predict_proba(data.X_val))
    else:
        values = data.X_val.to_numpy(dtype=np.float32)
        trees = [t.predict_proba(values) for t in model.estimators_]
        staged = [sum(trees[:k]) / k for k in range(1, len(trees) + 1)]
    for step in sorted({1, 2, 3, *range(10, len(curve), 10), len(curve)}):  # a sample
        assert curve[step - 1][1] == pytest.approx(log_loss(data.y_val, staged[step - 1]), rel=1e-9)
    assert curve[-1][1] == pytest.approx(
        evaluate(model, data.X_val, data.y_val).metrics["log_loss"]
    )
    assert all(math.isfinite(loss) for _, loss in curve)


def test_a_linear_model_has_no_loss_curve() -> None:
    data = load_data()
    model = build(PARAMS["logreg"]).fit(data.X_train, data.y_train)
    assert loss_curve(model, data.X_val, data.y_val) == []
