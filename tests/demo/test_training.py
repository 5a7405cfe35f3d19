"""The training pipeline's pieces on bad input: validation names what is wrong, the search
space refuses unknown families, the environment is valid, the traffic reader is strict."""

from __future__ import annotations

import numpy as np
import pytest

from keel.demo import search_space
from keel.demo.training import (
    ALIAS,
    CANARY,
    DEPLOYMENT,
    bundled_frame,
    environment,
    labelled_traffic,
    validate,
)
from keel.errors import InvalidInput, NotFound


def _validate(frame):
    return validate.fn(frame)  # the step's own function, run here without a pipeline


def test_the_bundled_frame_has_both_splits_and_passes_validation(tmp_path, monkeypatch) -> None:
    from keel.demo.home import using_home

    frame = bundled_frame()
    assert len(frame) == 569
    assert frame["split"].value_counts().to_dict() == {"train": 455, "validation": 114}
    assert set(frame["source"]) == {"bundled"}
    with using_home(tmp_path), __import__("keel").start_run(experiment="v"):
        assert _validate(frame) is frame


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["mean radius"]), "lacks column(s) 'mean radius'"),
        (lambda f: f.drop(columns=["target"]), "lacks column(s) 'target'"),
        (lambda f: f.assign(**{"mean area": np.nan}), "column 'mean area' has 569 missing"),
        (lambda f: f.assign(**{"worst area": np.inf}), "infinite"),
        (lambda f: f.assign(target=2), "target must be 0 or 1"),
        (lambda f: f.assign(**{"mean radius": "big"}), "schema"),
        (lambda f: f.assign(split="train"), "the validation split needs 20 rows"),
        (lambda f: f.head(0), "it has no rows"),
        (lambda f: f.head(30), "the validation split needs 20 rows"),
    ],
)
def test_bad_training_data_is_refused_naming_the_problem(change, message) -> None:
    with pytest.raises(InvalidInput, match="training data") as caught:
        _validate(change(bundled_frame()))
    assert message in str(caught.value)


def test_the_search_space_builds_each_family_and_refuses_others() -> None:
    for params in (
        {"family": "logistic_regression", "C": 1.0},
        {"family": "random_forest", "n_estimators": 25, "max_depth": 3},
        {"family": "gradient_boosting", "learning_rate": 0.1, "n_estimators": 50, "max_depth": 2},
    ):
        assert hasattr(search_space.build(params), "fit")
    assert search_space.describe({"family": "random_forest", "n_estimators": 25}) == (
        "rf n_estimators=25"
    )
    with pytest.raises(InvalidInput, match="unknown model family 'svm'"):
        search_space.build({"family": "svm"})
    with pytest.raises(InvalidInput, match="lack 'C'"):
        search_space.build({"family": "logistic_regression"})
    with pytest.raises(InvalidInput, match="unknown model family None"):
        search_space.build({})


def test_the_prod_environment_has_the_gates_and_the_strategy_asked_for() -> None:
    env = environment("runs:/abc/evaluation.parquet")
    assert (env.name, env.alias) == ("prod", ALIAS)
    assert env.deployment is not None
    assert env.deployment.deployment_name("m", "prod") == DEPLOYMENT
    assert (env.deployment.strategy, env.deployment.options) == ("canary", CANARY)
    assert [str(m) for m in env.gates.metrics] == ["roc_auc >= 0.95", "accuracy >= 0.9"]
    assert env.gates.compare_champion is not None
    assert env.gates.compare_champion.data == "runs:/abc/evaluation.parquet"
    blue_green = environment("runs:/abc/e.parquet", strategy="blue-green")
    assert (blue_green.deployment.strategy, blue_green.deployment.options) == ("blue-green", {})
    with pytest.raises(InvalidInput):
        environment("runs:/abc/e.parquet", strategy="yolo")
    with pytest.raises(InvalidInput):
        environment("runs:/abc/e.parquet", canary={"steps": "lots"})


def test_retraining_on_traffic_needs_a_deployment_that_logged_some(tmp_path) -> None:
    from keel.demo.home import using_home

    features = [c for c in bundled_frame().columns if c not in ("target", "split", "source")]
    with using_home(tmp_path):
        with pytest.raises((NotFound, InvalidInput), match=r"no-such-deployment|labelled"):
            labelled_traffic("no-such-deployment", features)
        with pytest.raises(InvalidInput):
            labelled_traffic("../../etc/passwd", features)
