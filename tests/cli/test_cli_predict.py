"""``keel predict batch`` on a registered scikit-learn model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cli_support import Cli, one_error_line

import keel


@pytest.fixture
def model_and_data(home: Path, tmp_path: Path) -> tuple[str, Path, np.ndarray]:
    """Register a logistic regression on breast_cancer; write its data as Parquet."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    with keel.start_run(experiment="cli-predict") as run:
        run.log_model(model, "model", input_example=X[:5])
    keel.register_model(f"runs:/{run.run_id}/model", "cancer")
    keel.set_alias("cancer", "champion", 1)
    source = tmp_path / "input.parquet"
    pq.write_table(pa.Table.from_pandas(X.assign(id=range(len(X))), preserve_index=False), source)
    return "models:/cancer@champion", source, model.predict(X)


def test_predict_batch(cli: Cli, model_and_data: tuple[str, Path, np.ndarray]) -> None:
    uri, source, expected = model_and_data
    out = source.with_name("output.parquet")
    result = cli("predict", "batch", uri, str(source), str(out), "--chunk-rows", "100",
                 "--workers", "1", "--keep", "id")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"wrote 569 rows to {out}" in result.stdout
    table = pq.read_table(out)
    assert table.column_names == ["id", "prediction", "probability_0", "probability_1"]
    np.testing.assert_array_equal(table["prediction"].to_numpy(), expected)

    again = cli.json("predict", "batch", uri, str(source), str(out), "--workers", "1",
                     "--no-proba", "--force")  # fmt: skip
    assert again["rows"] == 569
    assert again["columns"] == ["prediction"]
    assert again["engine"] == "local"


def test_predict_batch_errors(
    cli: Cli, model_and_data: tuple[str, Path, np.ndarray], tmp_path: Path
) -> None:
    uri, source, _ = model_and_data
    out = tmp_path / "out.parquet"
    out.write_bytes(b"precious")
    cases = [
        ((uri, str(source), str(out)), "already exists"),
        ((uri, str(tmp_path / "none.parquet"), str(tmp_path / "o.parquet")), "does not exist"),
        (("models:/nope/1", str(source), str(tmp_path / "o.parquet")), "nope"),
        ((uri, str(source), str(tmp_path / "o.parquet"), "--chunk-rows", "0"), "chunk_rows"),
        ((uri, str(source), str(tmp_path / "o.parquet"), "--engine", "spark"), "engine"),
        ((uri, str(source), str(tmp_path / "o.parquet"), "--keep", "nope"), "'nope'"),
        ((uri, str(source), str(tmp_path / "o.parquet"), "--columns", "ghost"), "needs: ghost"),
        ((uri, str(source), str(tmp_path / "o.parquet"), "--columns", "a,,b"), "non-empty"),
    ]
    for args, fragment in cases:
        result = cli("predict", "batch", *args)
        assert result.exit_code == 2, (args, result.output)
        assert fragment in one_error_line(result)
    assert out.read_bytes() == b"precious"
    assert not (tmp_path / "o.parquet").exists()
