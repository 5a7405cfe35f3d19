"""ONNX export: skl2onnx conversion checked against the original model, quantisation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from serving_support import register

import keel
from keel.errors import InvalidInput, SchemaError

pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")

from keel.serving.export import export_onnx


def test_classifier_export_matches_sklearn(
    classifier: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    monkeypatch.chdir(tmp_path)
    report = export_onnx(classifier.uri, data=classifier.X, latency_runs=5)
    assert report.path == tmp_path / "cancer-1.onnx"
    assert report.size_bytes == report.path.stat().st_size == report.unquantized_size_bytes
    assert (report.compared, report.rows_compared, report.label_mismatches) == (
        "probabilities", 569, 0,
    )  # fmt: skip
    assert report.max_abs_difference < 1e-5
    assert set(report.original_latency_ms) == set(report.onnx_latency_ms) == {"1_row", "batch"}
    assert all(
        v > 0 for v in [*report.original_latency_ms.values(), *report.onnx_latency_ms.values()]
    )
    session = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {"input": classifier.X.to_numpy(dtype="float32")})
    np.testing.assert_array_equal(labels, classifier.estimator.predict(classifier.X))
    np.testing.assert_allclose(proba, classifier.estimator.predict_proba(classifier.X), atol=1e-5)


def test_regressor_export_on_the_stored_example(regressor: Any, tmp_path: Path) -> None:
    report = export_onnx(regressor.uri, tmp_path / "diabetes.onnx", latency_runs=3)
    assert (report.compared, report.rows_compared, report.label_mismatches) == (
        "predictions", 5, None,
    )  # fmt: skip
    assert report.max_abs_difference < 1e-3  # float32 arithmetic on values around 150
    assert report.batch_rows == 100


def test_quantised_mlp_is_smaller_and_close(keel_env: Any, tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    mlp = MLPClassifier(hidden_layer_sizes=(128, 64), max_iter=200, random_state=0)
    uri = register(make_pipeline(StandardScaler(), mlp).fit(X, y), X, "mlp")
    plain = export_onnx(uri, tmp_path / "plain.onnx", data=X, latency_runs=3)
    small = export_onnx(
        uri, tmp_path / "small.onnx", data=X, quantize=True, register="mlp-onnx", latency_runs=3
    )
    assert not plain.quantized
    assert small.quantized
    assert small.size_bytes < plain.size_bytes / 2
    assert small.unquantized_size_bytes == plain.size_bytes
    assert plain.max_abs_difference < 1e-5
    assert small.max_abs_difference < 0.1
    assert small.label_mismatches is not None
    assert small.label_mismatches <= 10
    assert small.registered_uri == "models:/mlp-onnx/1"
    version = keel.get_model_version("mlp-onnx", 1)
    assert version.flavor == "onnx"
    assert version.tags["keel.export.source"] == uri
    onnx_model = keel.load_model(small.registered_uri)
    agree = np.mean(onnx_model.predict(X) == keel.load_model(uri).predict(X))
    assert agree > 0.98


def test_quantising_a_tree_model_leaves_it_as_it_is(classifier: Any, tmp_path: Path) -> None:
    report = export_onnx(classifier.uri, tmp_path / "m.onnx", quantize=True, latency_runs=2)
    assert not report.quantized
    assert report.size_bytes == report.unquantized_size_bytes
    assert report.max_abs_difference < 1e-5


class Doubler:
    """A pyfunc model: plain Python, no ONNX graph."""

    def predict(self, model_input: Any) -> Any:
        return np.asarray(model_input) * 2


def test_pyfunc_is_refused(keel_env: Any, tmp_path: Path) -> None:
    uri = register(Doubler(), np.ones((3, 2)), "doubler")
    with pytest.raises(InvalidInput, match="is a pyfunc model; ONNX export converts scikit-learn"):
        export_onnx(uri, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_bad_input_is_clear_and_changes_nothing(classifier: Any, tmp_path: Path) -> None:
    existing = tmp_path / "exists.onnx"
    existing.write_bytes(b"keep")
    out = tmp_path / "m.onnx"
    with pytest.raises(InvalidInput, match="already exists"):
        export_onnx(classifier.uri, existing)
    with pytest.raises(InvalidInput, match="does not exist"):
        export_onnx(classifier.uri, tmp_path / "no" / "m.onnx")
    with pytest.raises(InvalidInput, match="is a folder"):
        export_onnx(classifier.uri, tmp_path)
    with pytest.raises(InvalidInput, match="must not contain"):
        export_onnx(classifier.uri, out, register="a/b")
    with pytest.raises(InvalidInput, match="latency_runs"):
        export_onnx(classifier.uri, out, latency_runs=0)
    with pytest.raises(InvalidInput, match="quantize must be"):
        export_onnx(classifier.uri, out, quantize="yes")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="mean radius"):
        export_onnx(classifier.uri, out, data=classifier.X.drop(columns=["mean radius"]))
    with pytest.raises(InvalidInput, match="no rows"):
        export_onnx(classifier.uri, out, data=classifier.X.iloc[:0])
    with pytest.raises(InvalidInput, match="invalid model URI"):
        export_onnx("nope", out)
    assert existing.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.onnx", "keel-home"]
    assert keel.list_registered_models()[0].name == "cancer"
    assert len(keel.list_registered_models()) == 1
