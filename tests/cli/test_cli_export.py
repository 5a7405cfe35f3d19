"""``keel export onnx`` and ``keel bundle`` on a registered scikit-learn model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli, one_error_line

import keel

pytest.importorskip("skl2onnx", reason="the onnx extra is not installed")


@pytest.fixture
def model(home: Path, tmp_path: Path) -> str:
    """Register a random forest on breast_cancer; write its data as CSV for --data."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    estimator = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    with keel.start_run(experiment="cli-export") as run:
        run.log_model(estimator, "model", input_example=X[:5])
    keel.register_model(f"runs:/{run.run_id}/model", "cancer")
    X.to_csv(tmp_path / "data.csv", index=False)
    return "models:/cancer/1"


def test_export_onnx(cli: Cli, model: str, tmp_path: Path) -> None:
    result = cli("export", "onnx", model, "-o", str(tmp_path / "m.onnx"),
                 "--data", str(tmp_path / "data.csv"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "latency, 1 row" in result.stdout
    assert "largest probabilities difference over 569 rows" in result.stdout
    assert "0 labels differ" in result.stdout

    document = cli.json("export", "onnx", model, "-o", str(tmp_path / "m.onnx"), "--force",
                        "--register", "cancer-onnx")  # fmt: skip
    assert document["rows_compared"] == 5
    assert document["max_abs_difference"] < 1e-5
    assert document["registered_uri"] == "models:/cancer-onnx/1"
    assert keel.get_model_version("cancer-onnx", 1).flavor == "onnx"


def test_export_onnx_errors(cli: Cli, model: str, tmp_path: Path) -> None:
    (tmp_path / "taken.onnx").write_bytes(b"keep")
    (tmp_path / "bad.csv").write_text("x\n1\n")
    cases = [
        (("-o", str(tmp_path / "taken.onnx")), "already exists"),
        (("-o", str(tmp_path / "m.onnx"), "--data", str(tmp_path / "none.csv")), "does not exist"),
        (("-o", str(tmp_path / "m.onnx"), "--data", str(tmp_path / "bad.csv")), "mean radius"),
        (("-o", str(tmp_path / "m.onnx"), "--register", "a@b"), "must not contain"),
    ]
    for args, fragment in cases:
        result = cli("export", "onnx", model, *args)
        assert result.exit_code == 2, (args, result.output)
        assert fragment in one_error_line(result)
    result = cli("export", "onnx", "models:/missing/1", "-o", str(tmp_path / "m.onnx"))
    assert result.exit_code == 2
    assert "missing" in one_error_line(result)
    assert (tmp_path / "taken.onnx").read_bytes() == b"keep"
    assert not (tmp_path / "m.onnx").exists()


def test_bundle(cli: Cli, model: str, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = cli("bundle", model, str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (sklearn" in result.stdout
    assert (out / "serve.py").is_file()
    assert json.loads((out / "MANIFEST.json").read_text())["model_uri"] == model

    refused = cli("bundle", model, str(out))
    assert refused.exit_code == 2
    assert "is not empty" in one_error_line(refused)
    document = cli.json("bundle", model, str(out), "--force")
    assert document["flavor"] == "sklearn"
    assert "serve.py" in document["files"]
    missing = cli("bundle", "models:/cancer/9", str(tmp_path / "other"))
    assert missing.exit_code == 2
    assert "9" in one_error_line(missing)
    assert not (tmp_path / "other").exists()
