"""Flavors and packaging: models to directories and back, for sklearn, pyfunc and ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from keel.errors import InvalidInput, MissingDependency, SchemaError
from keel.registry.flavors import (
    VersionMismatchWarning,
    available_flavors,
    flavor_for,
    get_flavor,
)
from keel.registry.flavors.onnx import OnnxModel
from keel.registry.flavors.pyfunc import ModelContext
from keel.registry.packaging import (
    EXAMPLE_ROWS,
    MODEL_FILE,
    LoadedModel,
    input_example_to_data,
    load_model_dir,
    read_model_info,
    save_model_dir,
)
from keel.registry.signature import ColumnSpec, Schema, Signature, infer_signature

# -- models ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


@pytest.fixture(scope="module")
def classifier(cancer: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    X, y = cancer
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


class ThresholdModel:
    """A user model defined in the test module: pickled by value, so it loads anywhere."""

    def __init__(self, column: str, threshold: float) -> None:
        self.column = column
        self.threshold = threshold
        self.context: ModelContext | None = None

    def load_context(self, context: ModelContext) -> None:
        self.context = context

    def predict(self, model_input: pd.DataFrame) -> np.ndarray:
        return (model_input[self.column] > self.threshold).to_numpy().astype(np.int64)


class MeanRegressor:
    """The estimator API without scikit-learn's base classes, as XGBoost and LightGBM offer."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"shift": self.shift}

    def fit(self, X: np.ndarray, y: np.ndarray) -> MeanRegressor:
        self.mean_ = float(np.mean(y)) + self.shift
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.mean_)


def edit_flavor_meta(directory: Path, **changes: Any) -> None:
    path = directory / MODEL_FILE
    doc = json.loads(path.read_text())
    doc["flavor_meta"]["versions"].update(changes)
    path.write_text(json.dumps(doc))


# -- flavor registry -----------------------------------------------------------------------


def test_flavor_detection(classifier: Pipeline) -> None:
    assert flavor_for(classifier).name == "sklearn"
    assert flavor_for(MeanRegressor()).name == "sklearn"
    assert flavor_for(ThresholdModel("x", 0.0)).name == "pyfunc"
    assert available_flavors() == ("onnx", "pyfunc", "sklearn")


def test_unknown_flavor_lists_known_ones() -> None:
    with pytest.raises(
        InvalidInput, match=r"unknown model flavor 'tensorflow'.*onnx, pyfunc, sklearn"
    ):
        get_flavor("tensorflow")


def test_object_without_predict_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="needs a callable predict"):
        flavor_for(object())
    with pytest.raises(InvalidInput, match="not the class"):
        flavor_for(ThresholdModel)
    with pytest.raises(InvalidInput, match="predict"):
        save_model_dir({"weights": [1, 2]}, tmp_path / "m")
    assert not (tmp_path / "m").exists()


# -- sklearn -------------------------------------------------------------------------------


def test_sklearn_round_trip_with_dataframe_example(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series], classifier: Pipeline
) -> None:
    X, _ = cancer
    info = save_model_dir(classifier, tmp_path / "m", input_example=X)
    assert info.flavor == "sklearn"
    assert info.signature is not None
    assert info.signature.inputs.names == tuple(X.columns)
    assert info.signature.outputs == Schema((ColumnSpec(None, "int64", (None,)),), "tensor")
    meta = info.flavor_meta
    assert meta["class"] == "sklearn.pipeline.Pipeline"
    assert set(meta["versions"]) == {"scikit-learn", "numpy", "joblib"}

    model = load_model_dir(tmp_path / "m")
    assert isinstance(model, LoadedModel)
    assert model.flavor == "sklearn"
    assert model.signature == info.signature
    assert isinstance(model.unwrap(), Pipeline)
    np.testing.assert_array_equal(model.predict(X), classifier.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), classifier.predict_proba(X))
    # rows as records or a bare array go through the same checks
    np.testing.assert_array_equal(
        model.predict(X.iloc[:3].to_dict("records")), classifier.predict(X.iloc[:3])
    )
    np.testing.assert_array_equal(model.predict(X.to_numpy()[:3]), classifier.predict(X.iloc[:3]))
    assert "flavor='sklearn'" in repr(model)
    assert "mean radius: float64" in repr(model)


def test_sklearn_predict_checks_the_signature(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series], classifier: Pipeline
) -> None:
    X, _ = cancer
    save_model_dir(classifier, tmp_path / "m", input_example=X)
    model = load_model_dir(tmp_path / "m")
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['mean radius'\]"):
        model.predict(X.drop(columns="mean radius"))
    with pytest.raises(SchemaError, match="column 'mean area': expected float64, found string"):
        model.predict(X.iloc[:2].assign(**{"mean area": ["big", "small"]}))
    with pytest.raises(SchemaError, match="has 3 columns"):
        model.predict(np.zeros((1, 3)))
    with pytest.raises(SchemaError, match="input is None"):
        model.predict(None)
    empty = model.predict(X.iloc[:0])  # the pipeline itself refuses 0 rows
    assert empty.shape == (0,)
    assert empty.dtype == np.int64


def test_sklearn_fitted_on_arrays_takes_named_input_without_warning(tmp_path: Path) -> None:
    iris = load_iris(as_frame=True)
    clf = LogisticRegression(max_iter=1000).fit(iris.data.to_numpy(), iris.target)
    save_model_dir(clf, tmp_path / "m", input_example=iris.data)  # filterwarnings=error
    model = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(iris.data), clf.predict(iris.data.to_numpy()))


def test_sklearn_fitted_on_frame_takes_array_example_without_warning(tmp_path: Path) -> None:
    diabetes = load_diabetes(as_frame=True)
    reg = LinearRegression().fit(diabetes.data, diabetes.target)
    info = save_model_dir(reg, tmp_path / "m", input_example=diabetes.data.to_numpy())
    assert info.signature is not None
    assert info.signature.inputs.kind == "tensor"
    assert info.signature.outputs == Schema((ColumnSpec(None, "float64", (None,)),), "tensor")
    model = load_model_dir(tmp_path / "m")
    np.testing.assert_allclose(model.predict(diabetes.data.to_numpy()), reg.predict(diabetes.data))


def test_estimator_api_without_sklearn_base(tmp_path: Path) -> None:
    X = load_diabetes().data
    reg = MeanRegressor(shift=1.0).fit(X, load_diabetes().target)
    info = save_model_dir(reg, tmp_path / "m", input_example=X)
    assert info.flavor == "sklearn"
    assert info.flavor_meta["class"] == f"{__name__}.MeanRegressor"
    np.testing.assert_allclose(load_model_dir(tmp_path / "m").predict(X[:4]), reg.predict(X[:4]))


def test_sklearn_version_mismatch_warns_but_loads(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series], classifier: Pipeline
) -> None:
    X, _ = cancer
    save_model_dir(classifier, tmp_path / "m", input_example=X)
    edit_flavor_meta(tmp_path / "m", **{"scikit-learn": "0.0.1"})
    with pytest.warns(VersionMismatchWarning, match=r"scikit-learn 0\.0\.1 but scikit-learn"):
        model = load_model_dir(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X.iloc[:5]), classifier.predict(X.iloc[:5]))


def test_numpy_patch_difference_is_not_a_mismatch(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series], classifier: Pipeline
) -> None:
    save_model_dir(classifier, tmp_path / "m", input_example=cancer[0])
    major, minor, *_ = np.__version__.split(".")
    edit_flavor_meta(tmp_path / "m", numpy=f"{major}.{minor}.999")
    load_model_dir(tmp_path / "m")  # no warning: filterwarnings=error would fail this


def test_library_missing_at_load_is_a_missing_dependency(
    tmp_path: Path, classifier: Pipeline
) -> None:
    save_model_dir(classifier, tmp_path / "m")
    edit_flavor_meta(tmp_path / "m", keel_no_such_library="1.0")
    with pytest.raises(MissingDependency, match="keel_no_such_library"):
        load_model_dir(tmp_path / "m")


# -- pyfunc --------------------------------------------------------------------------------


def test_pyfunc_round_trip_calls_load_context(
    tmp_path: Path, cancer: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = cancer
    info = save_model_dir(ThresholdModel("mean radius", 15.0), tmp_path / "m", input_example=X)
    assert info.flavor == "pyfunc"
    assert info.flavor_meta["pickled_by_value"] == [__name__.partition(".")[0]]
    assert set(info.flavor_meta["versions"]) == {"python", "cloudpickle"}
    model = load_model_dir(tmp_path / "m")
    inner = model.unwrap()
    assert isinstance(inner.context, ModelContext)
    assert inner.context.directory == tmp_path / "m"
    expected = (X["mean radius"] > 15.0).to_numpy().astype(np.int64)
    np.testing.assert_array_equal(model.predict(X), expected)
    assert not hasattr(model, "predict_proba")
    with pytest.raises(SchemaError, match="missing column"):
        model.predict(X.drop(columns="mean radius"))


def test_pyfunc_python_version_mismatch_warns(tmp_path: Path) -> None:
    save_model_dir(ThresholdModel("a", 0.0), tmp_path / "m")
    edit_flavor_meta(tmp_path / "m", python="3.6.15")
    with pytest.warns(VersionMismatchWarning, match=r"python 3\.6\.15"):
        load_model_dir(tmp_path / "m")


def run_python(code: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pyfunc_class_from_main_loads_in_this_process(tmp_path: Path) -> None:
    code = f"""
        from pathlib import Path
        from keel.registry.packaging import save_model_dir

        class Doubler:  # defined in __main__ of a process that is gone when we load
            def predict(self, model_input):
                return model_input["x"].to_numpy() * 2

        save_model_dir(Doubler(), Path({str(tmp_path / "m")!r}), input_example={{"x": [1.0]}})
        """
    run_python(code, tmp_path)
    model = load_model_dir(tmp_path / "m")
    assert type(model.unwrap()).__name__ == "Doubler"
    np.testing.assert_array_equal(model.predict({"x": [1.5, 2.0]}), [3.0, 4.0])
    with pytest.raises(SchemaError, match="expected float64, found string"):
        model.predict({"x": ["a"]})


def test_pyfunc_from_test_module_loads_in_fresh_process(tmp_path: Path) -> None:
    save_model_dir(ThresholdModel("x", 1.0), tmp_path / "m", input_example={"x": [0.5, 2.0]})
    code = f"""
        import sys
        from pathlib import Path
        from keel.registry.packaging import load_model_dir

        assert {__name__!r} not in sys.modules
        model = load_model_dir(Path({str(tmp_path / "m")!r}))
        print(type(model.unwrap()).__name__, model.predict({{"x": [0.0, 3, 5.5]}}).tolist())
        """
    assert run_python(code, tmp_path).split() == ["ThresholdModel", "[0,", "1,", "1]"]


def test_failing_predict_on_example_is_reported_and_cleaned_up(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"model.predict\(input_example\) failed with KeyError"):
        save_model_dir(ThresholdModel("absent", 0.0), tmp_path / "m", input_example={"x": [1]})
    assert not (tmp_path / "m").exists()


# -- onnx ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_classifier(classifier: Pipeline, cancer: tuple[pd.DataFrame, pd.Series]) -> Any:
    from skl2onnx import to_onnx

    X, _ = cancer
    sample = X.to_numpy()[:1].astype(np.float32)
    return to_onnx(classifier, sample, options={"zipmap": False})


def test_onnx_round_trip_matches_sklearn(
    tmp_path: Path,
    cancer: tuple[pd.DataFrame, pd.Series],
    classifier: Pipeline,
    onnx_classifier: Any,
) -> None:
    X, _ = cancer
    assert flavor_for(onnx_classifier).name == "onnx"
    info = save_model_dir(onnx_classifier, tmp_path / "m", input_example=X)
    assert info.flavor == "onnx"
    assert (tmp_path / "m" / "model.onnx").is_file()
    assert info.flavor_meta["inputs"] == [{"name": "X", "elem_type": 1, "shape": [None, 30]}]
    assert info.signature is not None
    assert info.signature.outputs == Schema((ColumnSpec(None, "int64", (None,)),), "tensor")

    model = load_model_dir(tmp_path / "m")
    assert isinstance(model.unwrap(), OnnxModel)
    np.testing.assert_array_equal(model.predict(X), classifier.predict(X))
    np.testing.assert_array_equal(model.predict(X.to_numpy()), classifier.predict(X))
    _, proba = model.unwrap().run(X)
    np.testing.assert_allclose(proba, classifier.predict_proba(X), atol=1e-4)
    with pytest.raises(SchemaError, match="missing column"):
        model.predict(X.iloc[:, :5])


def test_onnx_multiple_named_inputs(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 1]) for n in "ab"]
    output = helper.make_tensor_value_info("total", TensorProto.FLOAT, [None, 1])
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["total"])], "add", inputs, [output]
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": [10, 20], "c": ["ignored", "too"]})
    save_model_dir(proto, tmp_path / "m", input_example=frame)
    model = load_model_dir(tmp_path / "m")
    np.testing.assert_allclose(model.predict(frame), [[11.0], [22.0]])
    raw = model.unwrap()
    with pytest.raises(SchemaError, match=r"missing \['b'\]"):
        raw.predict(frame[["a"]])
    with pytest.raises(SchemaError, match="pass a DataFrame or a dict"):
        raw.predict(np.zeros((2, 2)))


def test_onnx_flavor_refuses_other_objects(tmp_path: Path, classifier: Pipeline) -> None:
    with pytest.raises(InvalidInput, match=r"needs an onnx\.ModelProto"):
        save_model_dir(classifier, tmp_path / "m", flavor="onnx")
    assert not (tmp_path / "m").exists()


def test_onnx_without_runtime_is_a_missing_dependency(
    tmp_path: Path, onnx_classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_model_dir(onnx_classifier, tmp_path / "m")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(MissingDependency, match=r"pip install 'keel-mlops\[onnx\]'"):
        load_model_dir(tmp_path / "m")


# -- packaging -----------------------------------------------------------------------------


def test_input_example_is_truncated_and_rebuilt_with_dtypes(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "x": np.linspace(0, 1, 20, dtype=np.float32),
            "n": np.arange(20, dtype=np.int32),
            "when": pd.date_range("2024-01-01", periods=20, freq="D"),
            "label": [f"row{i}" for i in range(20)],
        }
    )
    info = save_model_dir(ThresholdModel("x", 0.5), tmp_path / "m", input_example=frame)
    stored = read_model_info(tmp_path / "m").input_example
    assert stored == info.input_example
    assert stored["columns"] == ["x", "n", "when", "label"]
    assert len(stored["data"]) == EXAMPLE_ROWS
    rebuilt = input_example_to_data(stored, info.signature)
    pd.testing.assert_frame_equal(rebuilt, frame.iloc[:EXAMPLE_ROWS], check_dtype=False)
    assert list(rebuilt.dtypes.astype(str))[:2] == ["float32", "int32"]
    assert pd.api.types.is_datetime64_any_dtype(rebuilt["when"])


def test_ndarray_example_is_stored_as_list(tmp_path: Path) -> None:
    X = load_iris().data.astype(np.float32)
    X[0, 0] = np.nan
    clf = MeanRegressor().fit(np.nan_to_num(X), np.ones(len(X)))
    info = save_model_dir(clf, tmp_path / "m", input_example=X)
    assert info.input_example[0][0] is None
    assert len(info.input_example) == EXAMPLE_ROWS
    rebuilt = input_example_to_data(info.input_example, info.signature)
    assert rebuilt.dtype == np.float32
    np.testing.assert_array_equal(rebuilt, X[:EXAMPLE_ROWS])


def test_explicit_signature_is_kept_and_checked(tmp_path: Path) -> None:
    signature = infer_signature(pd.DataFrame({"x": [1.0]}))
    info = save_model_dir(ThresholdModel("x", 0.0), tmp_path / "a", signature=signature)
    assert info.signature == signature
    assert read_model_info(tmp_path / "a").signature == signature
    with pytest.raises(SchemaError, match="missing"):
        save_model_dir(
            ThresholdModel("x", 0.0), tmp_path / "b", signature=signature, input_example={"y": [1]}
        )


def test_model_without_example_has_no_signature(tmp_path: Path) -> None:
    info = save_model_dir(ThresholdModel("x", 0.0), tmp_path / "m")
    assert info.signature is None
    assert info.input_example is None
    model = load_model_dir(tmp_path / "m")
    assert "signature=None" in repr(model)
    np.testing.assert_array_equal(model.predict(pd.DataFrame({"x": [-1, 1]})), [0, 1])


def test_model_json_records_versions(tmp_path: Path) -> None:
    from keel._version import __version__

    save_model_dir(ThresholdModel("x", 0.0), tmp_path / "m")
    doc = json.loads((tmp_path / "m" / MODEL_FILE).read_text())
    assert doc["format_version"] == 1
    assert doc["keel_version"] == __version__
    assert doc["python_version"].count(".") == 2
    assert doc["created_at"].endswith("Z")


def test_save_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not an empty directory"):
        save_model_dir(ThresholdModel("x", 0.0), tmp_path / "m")
    assert (tmp_path / "m" / "keep.txt").read_text() == "mine"


def test_save_with_unknown_flavor(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown model flavor 'keras'"):
        save_model_dir(ThresholdModel("x", 0.0), tmp_path / "m", flavor="keras")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "keel-model.json does not exist"),
        ("{not json", "cannot read .*keel-model.json"),
        ("[]", "must hold a JSON object"),
        ('{"format_version": 2}', "format_version 2.*upgrade Keel"),
        ('{"format_version": 1, "flavor": "pyfunc"}', "flavor_meta"),
        (
            '{"format_version": 1, "flavor": "pyfunc", "flavor_meta": {}, "signature": {}}',
            "keel-model.json: a signature must be",
        ),
    ],
)
def test_read_model_info_rejects_bad_files(tmp_path: Path, content: str | None, match: str) -> None:
    if content is not None:
        (tmp_path / MODEL_FILE).write_text(content)
    with pytest.raises(InvalidInput, match=match):
        read_model_info(tmp_path)


def test_load_with_unknown_flavor_in_file(tmp_path: Path) -> None:
    save_model_dir(ThresholdModel("x", 0.0), tmp_path / "m")
    path = tmp_path / "m" / MODEL_FILE
    path.write_text(path.read_text().replace('"pyfunc"', '"torch"'))
    with pytest.raises(InvalidInput, match="unknown model flavor 'torch'"):
        load_model_dir(tmp_path / "m")


def test_flavor_file_name_cannot_escape_the_directory(tmp_path: Path) -> None:
    save_model_dir(ThresholdModel("x", 0.0), tmp_path / "m")
    path = tmp_path / "m" / MODEL_FILE
    doc = json.loads(path.read_text())
    doc["flavor_meta"]["file"] = "../elsewhere.pkl"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="invalid model file"):
        load_model_dir(tmp_path / "m")


def test_signature_for_output_dataframe(tmp_path: Path) -> None:
    class Framer:
        def predict(self, model_input: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"score": model_input["x"] * 2.0, "flag": model_input["x"] > 0})

    info = save_model_dir(Framer(), tmp_path / "m", input_example={"x": [1.0, -1.0]})
    assert info.signature is not None
    assert (
        info.signature.outputs
        == Signature.from_dict(
            {
                "inputs": {"kind": "dataframe", "columns": [{"name": "x", "dtype": "float64"}]},
                "outputs": {
                    "kind": "dataframe",
                    "columns": [
                        {"name": "score", "dtype": "float64"},
                        {"name": "flag", "dtype": "bool"},
                    ],
                },
            }
        ).outputs
    )
    empty = load_model_dir(tmp_path / "m").predict({"x": []})
    assert list(empty.columns) == ["score", "flag"]
    assert len(empty) == 0
