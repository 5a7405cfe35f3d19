"""Batch inference: streamed chunks, process pool and Ray equal in-process predict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from serving_support import register
from tests.conftest import RAY_GROUP

from keel.errors import InvalidInput, SchemaError
from keel.serving.batch import predict_batch


def _write(frame: pd.DataFrame, path: Path, **options: Any) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, **options)
    return path


def _with_id(X: pd.DataFrame) -> pd.DataFrame:
    return X.assign(row_id=np.arange(len(X)))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_one_worker_matches_in_process_predict(classifier: Any, tmp_path: Path) -> None:
    source = _write(_with_id(classifier.X), tmp_path / "in.parquet")
    calls: list[tuple[int, int | None]] = []
    report = predict_batch(
        classifier.uri,
        source,
        tmp_path / "out.parquet",
        chunk_rows=100,
        workers=1,
        keep_columns=["row_id"],
        progress=lambda done, total: calls.append((done, total)),
    )
    out = pq.read_table(report.output_path).to_pandas()
    assert report.rows == len(classifier.X) == 569
    assert report.chunks == 6  # 5 full chunks of 100 and one of 69
    assert report.columns == ("row_id", "prediction", "probability_0", "probability_1")
    assert out["row_id"].tolist() == list(range(569))
    np.testing.assert_array_equal(out["prediction"], classifier.estimator.predict(classifier.X))
    proba = classifier.estimator.predict_proba(classifier.X)
    np.testing.assert_allclose(out[["probability_0", "probability_1"]], proba, rtol=0, atol=0)
    assert calls == [(100, 569), (200, 569), (300, 569), (400, 569), (500, 569), (569, 569)]
    assert _leftovers(tmp_path) == []


def test_worker_processes_match_one_worker(classifier: Any, tmp_path: Path) -> None:
    source = _write(_with_id(classifier.X), tmp_path / "in.parquet")
    one = predict_batch(classifier.uri, source, tmp_path / "one.parquet", chunk_rows=50, workers=1)
    two = predict_batch(classifier.uri, source, tmp_path / "two.parquet", chunk_rows=50, workers=2)
    assert two.workers == 2
    assert two.chunks == 12
    assert pq.read_table(two.output_path).equals(pq.read_table(one.output_path))


@pytest.mark.parametrize("chunk_rows", [1, 9, 10, 11, 1000])
def test_chunk_boundaries(regressor: Any, tmp_path: Path, chunk_rows: int) -> None:
    frame = pd.DataFrame(regressor.X[:10], columns=[f"f{i}" for i in range(10)])
    source = _write(frame, tmp_path / "in.parquet")
    report = predict_batch(
        regressor.uri, source, tmp_path / "out.parquet", chunk_rows=chunk_rows, workers=1
    )
    assert report.chunks == -(-10 // chunk_rows)
    out = pq.read_table(report.output_path)
    assert out.column_names == ["prediction"]  # a regressor has no probabilities
    np.testing.assert_allclose(
        out["prediction"].to_numpy(), regressor.estimator.predict(frame.to_numpy())
    )


def test_csv_input_and_csv_output(regressor: Any, tmp_path: Path) -> None:
    frame = pd.DataFrame(regressor.X, columns=[f"f{i}" for i in range(10)])
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    report = predict_batch(regressor.uri, source, tmp_path / "out.csv", chunk_rows=64, workers=1)
    assert report.rows == 442
    assert report.chunks == 7
    out = pd.read_csv(report.output_path)
    expected = regressor.estimator.predict(pd.read_csv(source).to_numpy())
    np.testing.assert_allclose(out["prediction"], expected, rtol=1e-12)


def test_tensor_model_reads_all_but_kept_columns_or_the_named_ones(
    regressor: Any, tmp_path: Path
) -> None:
    names = [f"f{i}" for i in range(10)]
    frame = pd.DataFrame(regressor.X, columns=names).assign(row_id=np.arange(442))
    source = _write(frame[["row_id", *names]], tmp_path / "in.parquet")
    expected = regressor.estimator.predict(regressor.X)
    kept = predict_batch(
        regressor.uri, source, tmp_path / "kept.parquet", workers=1, keep_columns=["row_id"]
    )
    out = pq.read_table(kept.output_path).to_pandas()
    assert out["row_id"].tolist() == list(range(442))
    np.testing.assert_allclose(out["prediction"], expected)
    named = predict_batch(regressor.uri, source, tmp_path / "named.parquet", columns=names)
    np.testing.assert_allclose(pq.read_table(named.output_path)["prediction"], expected)
    with pytest.raises(SchemaError, match="rows 0–441"):  # 11 columns for a 10-wide tensor
        predict_batch(regressor.uri, source, tmp_path / "all.parquet", workers=1)
    assert not (tmp_path / "all.parquet").exists()


def test_empty_input_gives_empty_output(classifier: Any, tmp_path: Path) -> None:
    source = _write(classifier.X.iloc[:0], tmp_path / "empty.parquet")
    report = predict_batch(classifier.uri, source, tmp_path / "out.parquet", workers=1)
    out = pq.read_table(report.output_path)
    assert (report.rows, report.chunks, out.num_rows) == (0, 0, 0)
    assert out.column_names == ["prediction", "probability_0", "probability_1"]


def test_missing_column_is_refused_before_any_output(classifier: Any, tmp_path: Path) -> None:
    source = _write(classifier.X.drop(columns=["mean radius"]), tmp_path / "in.parquet")
    with pytest.raises(SchemaError, match=r"lacks column.*mean radius"):
        predict_batch(classifier.uri, source, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    assert _leftovers(tmp_path) == []


def test_model_failure_in_a_later_chunk_leaves_no_output(regressor: Any, tmp_path: Path) -> None:
    frame = pd.DataFrame(regressor.X, columns=[f"f{i}" for i in range(10)])
    frame.iloc[120, 3] = np.nan  # Ridge refuses NaN: chunk 100–149 fails after two were written
    source = _write(frame, tmp_path / "in.parquet")
    with pytest.raises(InvalidInput, match=r"rows 100–149: the model failed with ValueError"):
        predict_batch(regressor.uri, source, tmp_path / "out.parquet", chunk_rows=50, workers=1)
    assert not (tmp_path / "out.parquet").exists()
    assert _leftovers(tmp_path) == []


def test_existing_output_needs_overwrite(classifier: Any, tmp_path: Path) -> None:
    source = _write(classifier.X, tmp_path / "in.parquet")
    target = tmp_path / "out.parquet"
    target.write_bytes(b"keep me")
    with pytest.raises(InvalidInput, match="already exists"):
        predict_batch(classifier.uri, source, target, workers=1)
    assert target.read_bytes() == b"keep me"
    predict_batch(classifier.uri, source, target, workers=1, overwrite=True)
    assert pq.read_table(target).num_rows == 569


def test_unreadable_or_corrupt_input(classifier: Any, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(InvalidInput, match=r"cannot read .*garbage.parquet as Parquet"):
        predict_batch(classifier.uri, garbage, tmp_path / "out.parquet")
    whole = _write(classifier.X, tmp_path / "whole.parquet", row_group_size=100)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(InvalidInput, match=r"cannot read .*cut.parquet"):
        predict_batch(classifier.uri, cut, tmp_path / "out.parquet")
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("a,b\n1,2\n3\n")
    with pytest.raises(InvalidInput, match=r"bad.csv"):
        predict_batch(classifier.uri, bad_csv, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    assert _leftovers(tmp_path) == []


def test_bad_arguments_are_clear(classifier: Any, tmp_path: Path) -> None:
    source = _write(classifier.X, tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"chunk_rows": 0}, "chunk_rows must be an integer from 1"),
        ({"chunk_rows": True}, "chunk_rows must be an integer"),
        ({"workers": 0}, "workers must be an integer from 1"),
        ({"engine": "spark"}, "engine must be one of local, ray"),
        ({"keep_columns": "mean radius"}, "keep_columns must be a list"),
        ({"keep_columns": ["no such"]}, "has no column 'no such' to keep"),
        ({"columns": []}, "columns must name at least one"),
    ]
    for options, message in cases:
        with pytest.raises(InvalidInput, match=message):
            predict_batch(classifier.uri, source, out, **options)
    with pytest.raises(InvalidInput, match="does not exist"):
        predict_batch(classifier.uri, tmp_path / "nope.parquet", out)
    with pytest.raises(InvalidInput, match="is not a file"):
        predict_batch(classifier.uri, tmp_path, out)
    with pytest.raises(InvalidInput, match=r"output folder .* does not exist"):
        predict_batch(classifier.uri, source, tmp_path / "no" / "out.parquet")
    with pytest.raises(InvalidInput, match="is the input file"):
        predict_batch(classifier.uri, source, source, overwrite=True)
    with pytest.raises(InvalidInput, match="invalid model URI"):
        predict_batch("churn", source, out)
    assert not out.exists()


@pytest.fixture
def local_ray(ray_cluster: Any) -> Any:
    """The suite's one local Ray instance (see ``ray_cluster``)."""
    return ray_cluster


@pytest.mark.ray
@pytest.mark.xdist_group(RAY_GROUP)
def test_ray_engine_matches_local(classifier: Any, tmp_path: Path, local_ray: Any) -> None:
    source = _write(_with_id(classifier.X), tmp_path / "in.parquet")
    local = predict_batch(
        classifier.uri, source, tmp_path / "local.parquet", chunk_rows=64, workers=1,
        keep_columns=["row_id"],
    )  # fmt: skip
    remote = predict_batch(
        classifier.uri, source, tmp_path / "ray.parquet", chunk_rows=64, engine="ray",
        workers=2, keep_columns=["row_id"],
    )  # fmt: skip
    assert (remote.engine, remote.workers, remote.chunks) == ("ray", 2, 9)
    assert pq.read_table(remote.output_path).equals(pq.read_table(local.output_path))
    assert local_ray.is_initialized()  # a cluster the caller started is left running


@pytest.mark.ray
@pytest.mark.xdist_group(RAY_GROUP)
def test_ray_engine_reports_a_chunk_failure(regressor: Any, tmp_path: Path, local_ray: Any) -> None:
    frame = pd.DataFrame(regressor.X, columns=[f"f{i}" for i in range(10)])
    frame.iloc[60, 0] = np.nan
    source = _write(frame, tmp_path / "in.parquet")
    with pytest.raises(InvalidInput, match="rows 50–99: the model failed with ValueError"):
        predict_batch(regressor.uri, source, tmp_path / "out.parquet", chunk_rows=50, engine="ray")
    assert not (tmp_path / "out.parquet").exists()
    assert _leftovers(tmp_path) == []


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from keel.serving.batch import predict_batch

    uri, source, out = sys.argv[1:4]
    report = predict_batch(uri, source, out, chunk_rows=20_000, workers=1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": report.rows, "peak_kib": peak}))
    """
)


def _peak_rss(uri: str, source: Path, out: Path) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, uri, str(source), str(out)],
        capture_output=True, text=True, timeout=120, env={**os.environ}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_memory_stays_bounded_on_a_file_much_larger_than_a_chunk(
    keel_env: Any, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    names = [f"x{i}" for i in range(8)]
    X = pd.DataFrame(rng.normal(size=(200, 8)), columns=names)
    uri = register(LogisticRegression().fit(X, X["x0"] > 0), X, "wide")
    rows, block = 2_400_000, 200_000
    schema = pa.schema([(n, pa.float64()) for n in names])
    big = tmp_path / "big.parquet"
    with pq.ParquetWriter(big, schema) as writer:
        for _ in range(rows // block):
            values = rng.normal(size=(block, 8))
            writer.write_table(pa.table(dict(zip(names, values.T, strict=True)), schema=schema))
    small = _write(X, tmp_path / "small.parquet")
    in_memory = rows * 8 * 8  # 154 MB of float64 once loaded
    tiny = _peak_rss(uri, small, tmp_path / "small-out.parquet")
    large = _peak_rss(uri, big, tmp_path / "big-out.parquet")
    assert (tiny["rows"], large["rows"]) == (200, rows)
    # The whole file streams through a process that peaks at little more than a tiny job's.
    assert (large["peak_kib"] - tiny["peak_kib"]) * 1024 < in_memory / 4, (tiny, large)
    assert pq.ParquetFile(tmp_path / "big-out.parquet").metadata.num_rows == rows
