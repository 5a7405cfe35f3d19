"""Registering, aliasing and loading models through the SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import keel
from keel.errors import IntegrityError, InvalidInput, NotFound, SchemaError

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="module")
def fitted(cancer):
    X, y = cancer
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


def _logged_run(fitted, X, *, auc: float = 0.9) -> str:
    with keel.start_run(experiment="churn") as run:
        run.log_params({"C": 1.0})
        run.log_metric("roc_auc", auc)
        run.log_dataset(X, name="cancer", context="training")
        run.log_model(fitted, "model", input_example=X.head(5))
    return run.run_id


def test_register_alias_and_load_the_champion(fitted, cancer) -> None:
    X, _ = cancer
    run_id = _logged_run(fitted, X)
    version = keel.register_model(f"runs:/{run_id}/model", "churn")
    assert (version.name, version.version, version.run_id) == ("churn", 1, run_id)
    assert version.flavor == "sklearn"
    assert version.metrics == {"roc_auc": 0.9}
    assert [c["name"] for c in version.signature["inputs"]["columns"]] == list(X.columns)

    keel.set_alias("churn", "champion", 1)
    model = keel.load_model("models:/churn@champion")
    np.testing.assert_array_equal(model.predict(X.head(20)), fitted.predict(X.head(20)))
    np.testing.assert_array_equal(
        keel.load_model("models:/churn/1").predict(X.to_numpy()[:3]), fitted.predict(X.head(3))
    )
    assert keel.load_model("models:/churn/latest").flavor == "sklearn"
    assert keel.load_model(f"runs:/{run_id}/model").flavor == "sklearn"


def test_versions_count_up_and_aliases_move_with_history(fitted, cancer) -> None:
    X, _ = cancer
    for auc in (0.8, 0.85, 0.9):
        keel.register_model(f"runs:/{_logged_run(fitted, X, auc=auc)}/model", "churn")
    assert [v.version for v in keel.list_model_versions("churn")] == [3, 2, 1]

    keel.set_alias("churn", "champion", 1)
    change = keel.set_alias("churn", "champion", 3)
    assert (change.previous_version, change.version) == (1, 3)
    keel.set_alias("churn", "challenger", 2)
    keel.delete_alias("churn", "challenger")

    model = keel.get_registered_model("churn")
    assert model.latest_version == 3
    assert model.aliases == {"champion": 3}
    assert keel.get_model_version("churn", 3).aliases == ("champion",)
    history = [(h.alias, h.previous_version, h.version) for h in keel.get_alias_history("churn")]
    assert history == [
        ("champion", None, 1),
        ("champion", 1, 3),
        ("challenger", None, 2),
        ("challenger", 2, None),
    ]
    assert [h.version for h in keel.get_alias_history("churn", "champion")] == [1, 3]


def test_each_version_gets_a_model_card(fitted, cancer) -> None:
    X, _ = cancer
    run_id = _logged_run(fitted, X)
    keel.register_model(f"runs:/{run_id}/model", "churn")
    card = keel.get_model_card("churn", 1)
    assert card.startswith("# churn — version 1")
    assert "To be written by the model's owner" in card
    assert "cancer" in card
    assert "training" in card
    assert "roc_auc" in card
    assert "mean radius" in card
    assert run_id in card  # lineage
    # The output tensor is a table row (dtype and shape), not a Python dict's repr.
    assert "| tensor | type | shape |" in card
    assert "| — | int64 | (any) |" in card
    assert "'kind'" not in card

    card = keel.set_model_card("churn", 1, intended_use="Ranking accounts for retention calls.")
    assert "Ranking accounts for retention calls." in card
    assert "To be written" not in keel.get_model_card("churn", 1)


def test_predict_checks_input_against_the_signature(fitted, cancer) -> None:
    X, _ = cancer
    keel.register_model(f"runs:/{_logged_run(fitted, X)}/model", "churn")
    model = keel.load_model("models:/churn/1")
    with pytest.raises(SchemaError, match="mean radius"):
        model.predict(X.drop(columns=["mean radius"]).head(3))
    wrong = X.head(3).astype({"mean texture": object})
    wrong["mean texture"] = "soft"
    with pytest.raises(SchemaError, match="mean texture"):
        model.predict(wrong)
    with pytest.raises(InvalidInput):
        model.predict(np.ones((2, 3)))


def test_a_tampered_model_file_is_refused_before_deserialisation(fitted, cancer) -> None:
    from keel.stores import current_stores

    X, _ = cancer
    run_id = _logged_run(fitted, X)
    keel.register_model(f"runs:/{run_id}/model", "churn")
    stores = current_stores()
    target = next(
        e for e in keel.list_artifacts(run_id, "model") if e.path.endswith((".joblib", ".pkl"))
    )
    # Through a server ("rest"), the blobs live in the server's home beside the client's.
    root = getattr(stores.artifacts, "url", None) or keel.get_settings().home.parent / "server-home"
    with open(_local_blob_path(root, target.digest), "r+b") as handle:
        handle.seek(10)
        handle.write(b"\x00evil\x00")
    import shutil

    shutil.rmtree(keel.get_settings().home / "cache", ignore_errors=True)
    with pytest.raises(IntegrityError, match=target.digest):
        keel.load_model("models:/churn/1")


def _local_blob_path(root: str, digest: str):
    from pathlib import Path

    matches = list(Path(root).rglob(digest))
    assert len(matches) == 1, matches
    return matches[0]


def test_a_cached_model_that_was_altered_is_fetched_again(fitted, cancer) -> None:
    X, _ = cancer
    keel.register_model(f"runs:/{_logged_run(fitted, X)}/model", "churn")
    keel.load_model("models:/churn/1")
    cache = keel.get_settings().home / "cache" / "models"
    for file in cache.rglob("*"):
        if file.is_file() and file.suffix in (".joblib", ".pkl"):
            file.write_bytes(b"not a model")
    model = keel.load_model("models:/churn/1")
    np.testing.assert_array_equal(model.predict(X.head(5)), fitted.predict(X.head(5)))


@pytest.mark.parametrize(
    ("uri", "error"),
    [
        ("", InvalidInput),
        ("churn", InvalidInput),
        ("models:/", InvalidInput),
        ("models:/churn/0", InvalidInput),
        ("models:/churn/-1", InvalidInput),
        ("models:/churn/abc", InvalidInput),
        ("models:/churn/" + "9" * 40, InvalidInput),  # past the database's integer
        ("models:/churn/2147483648", InvalidInput),
        ("models:/churn/\u0663", InvalidInput),  # an Arabic-Indic digit three
        ("models:/churn@", InvalidInput),
        ("models:/churn@1bad", InvalidInput),
        ("models:/missing/1", NotFound),
        ("models:/missing@champion", NotFound),
        ("runs:/nothex/model", InvalidInput),
        ("runs:/" + "0" * 32 + "/model", NotFound),
        ("s3://bucket/model", InvalidInput),
    ],
)
def test_bad_model_uris_are_refused(uri: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        keel.load_model(uri)


def test_bad_registrations_are_refused(fitted, cancer) -> None:
    X, _ = cancer
    run_id = _logged_run(fitted, X)
    with pytest.raises(InvalidInput, match="must not contain"):
        keel.register_model(f"runs:/{run_id}/model", "a/b")
    with pytest.raises(InvalidInput, match="must not be empty"):
        keel.register_model(f"runs:/{run_id}/model", " ")
    with pytest.raises(NotFound, match="no Keel model"):
        keel.register_model(f"runs:/{run_id}/elsewhere", "churn")
    with pytest.raises(InvalidInput, match="runs:/"):
        keel.register_model("models:/churn/1", "churn")
    keel.register_model(f"runs:/{run_id}/model", "churn")
    with pytest.raises(NotFound, match="no version 7"):
        keel.set_alias("churn", "champion", 7)
    with pytest.raises(InvalidInput, match="reserved"):
        keel.set_alias("churn", "latest", 1)
    with pytest.raises(InvalidInput, match="positive integer"):
        keel.set_alias("churn", "champion", 0)
    with pytest.raises(NotFound, match="no alias"):
        keel.delete_alias("churn", "never-set")
    with pytest.raises(NotFound):
        keel.get_model_version("nope", 1)


def test_log_model_can_register_in_one_step(fitted, cancer) -> None:
    X, _ = cancer
    with keel.start_run(experiment="churn") as run:
        version = run.log_model(
            fitted, "model", input_example=X.head(3), registered_model_name="churn"
        )
    assert version.version == 1
    assert version.run_id == run.run_id


def test_a_python_function_model_round_trips(cancer) -> None:
    X, _ = cancer

    class Threshold:
        def predict(self, frame):
            return (frame["mean radius"] > 15).astype(int).to_numpy()

    with keel.start_run(experiment="rules") as run:
        run.log_model(Threshold(), "model", input_example=X.head(3))
    keel.register_model(f"runs:/{run.run_id}/model", "rule")
    model = keel.load_model("models:/rule/1")
    assert model.flavor == "pyfunc"
    expected = (X["mean radius"] > 15).astype(int).to_numpy()
    np.testing.assert_array_equal(model.predict(X), expected)


def _lightgbm() -> Any:
    import lightgbm

    return lightgbm.LGBMClassifier(n_estimators=20, verbose=-1, random_state=0)


def _xgboost() -> Any:
    import xgboost

    return xgboost.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0)


@pytest.mark.parametrize("make", [_lightgbm, _xgboost], ids=["lightgbm", "xgboost"])
def test_gradient_boosting_libraries_use_the_sklearn_flavor(make, cancer) -> None:
    # Both are dev dependencies: a missing one fails here rather than skipping.
    X, y = cancer
    model = make().fit(X, y)
    with keel.start_run(experiment="gbm") as run:
        run.log_model(model, "model", input_example=X.head(5))
    version = keel.register_model(f"runs:/{run.run_id}/model", "gbm")
    loaded = keel.load_model(version.uri)
    assert loaded.flavor == "sklearn"
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X))
    with pytest.raises(InvalidInput, match="mean radius"):
        loaded.predict(X.drop(columns=["mean radius"]))


def test_concurrent_registrations_get_distinct_versions(fitted, cancer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    X, _ = cancer
    uri = f"runs:/{_logged_run(fitted, X)}/model"
    with ThreadPoolExecutor(max_workers=4) as pool:
        versions = list(pool.map(lambda _: keel.register_model(uri, "raced").version, range(20)))
    assert sorted(versions) == list(range(1, 21))
    assert keel.get_registered_model("raced").latest_version == 20
