"""The prediction logger's buffer and segments: bounded, flushed, partitioned, readable.

Records go straight to a :class:`PredictionLogger` on a fresh home's artifact root; the
segments are then read with ``read_predictions`` and with DuckDB directly.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from keel.errors import InvalidInput
from keel.monitoring.prediction_log import PredictionLogger
from keel.monitoring.prediction_read import read_predictions
from keel.monitoring.prediction_serving import request_id_of
from keel.monitoring.prediction_store import hour_of, log_root

T0 = int(datetime(2026, 11, 30, 9, 59, 59, tzinfo=UTC).timestamp() * 1000) + 999


def _logger(**options: Any) -> PredictionLogger:
    options.setdefault("flush_interval", 3600)
    return PredictionLogger(log_root(), **options)


def _record(logger: PredictionLogger, i: int, *, rows: int = 1, **extra: Any) -> bool:
    fields: dict[str, Any] = {
        "deployment": "dep",
        "model": "m",
        "version": "1",
        "request_id": f"r{i}",
        "time_ms": T0 + i,
        "latency_ms": 0.5,
        "status": 200,
        "rows": rows,
        "inputs": {"a": np.arange(rows, dtype=np.float64) + i},
        "outputs": {"predict": np.full(rows, i)},
    }
    fields.update(extra)
    return logger.record(**fields)


def test_a_full_buffer_drops_and_counts_instead_of_blocking(keel_env: Any) -> None:
    logger = _logger(max_rows=150)
    assert _record(logger, 0, rows=100)
    assert not _record(logger, 1, rows=100)  # would pass 150 rows: dropped, not waited for
    assert _record(logger, 2, rows=50)
    assert not _record(logger, 3)
    assert logger.counters()["dropped"] == 2
    assert logger.buffered_rows == 150
    assert "keel_prediction_log_dropped_total 2.0" in logger.metrics_text().decode()
    logger.close()
    assert sorted(read_predictions("dep")["request_id"].unique()) == ["r0", "r2"]
    assert not _record(logger, 4)  # closed: nothing more is taken
    by_records = _logger(max_records=3)
    assert [_record(by_records, i) for i in range(5)] == [True, True, True, False, False]
    by_records.close()


def test_shutdown_flushes_what_is_buffered(keel_env: Any) -> None:
    logger = _logger()
    for i in range(10):
        _record(logger, i)
    assert read_predictions("dep").empty  # nothing written before the flush
    logger.close()
    df = read_predictions("dep")
    assert df["request_id"].tolist() == [f"r{i}" for i in range(10)]
    assert logger.counters()["segments"] == 2  # T0 + i crosses 10:00: two hours


def test_flush_rows_wakes_the_writer(keel_env: Any) -> None:
    logger = _logger(flush_rows=20)
    try:
        for i in range(25):
            _record(logger, 10_000 + i)  # all in one hour
        deadline = time.monotonic() + 20
        while logger.counters()["segments"] == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert logger.counters()["segments"] >= 1
    finally:
        logger.close()
    assert len(read_predictions("dep")) == 25


def test_segments_are_hive_partitioned_by_deployment_and_hour(keel_env: Any) -> None:
    logger = _logger()
    for i in range(4):
        _record(logger, i * 1000)  # 09:59:59 and 10:00:00 onwards
        _record(logger, i, deployment="other")
    logger.close()
    root = Path(log_root().url) / "monitoring" / "predictions"
    folders = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*"))
    assert folders == [
        "deployment=dep/hour=2026-11-30T09",
        "deployment=dep/hour=2026-11-30T10",
        "deployment=other/hour=2026-11-30T09",
        "deployment=other/hour=2026-11-30T10",
    ]
    assert not list(root.rglob("*.part"))  # temp names are gone once published
    found = duckdb.sql(
        f"SELECT deployment, hour, count(*) AS n FROM read_parquet('{root}/**/*.parquet', "
        "hive_partitioning = true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert found == [
        ("dep", "2026-11-30T09", 1),
        ("dep", "2026-11-30T10", 3),
        ("other", "2026-11-30T09", 1),
        ("other", "2026-11-30T10", 3),
    ]
    assert hour_of(T0) == "2026-11-30T09"
    assert hour_of(T0 + 1) == "2026-11-30T10"


def test_the_window_reads_only_its_hours(keel_env: Any) -> None:
    logger = _logger()
    for i in range(6):
        _record(logger, i * 600_000)  # every 10 minutes from 09:59:59
    logger.close()
    ten = datetime(2026, 11, 30, 10, tzinfo=UTC)
    df = read_predictions("dep", start=ten, end=ten + timedelta(minutes=30))
    assert df["request_id"].tolist() == ["r600000", "r1200000", "r1800000"]
    assert read_predictions("dep", end=T0 + 1)["request_id"].tolist() == ["r0"]
    assert read_predictions("dep", start=T0 + 1, end=T0 + 1).empty
    # the earlier hour's segment is not even listed for a window in the later hour
    hour9 = Path(log_root().url) / "monitoring/predictions/deployment=dep/hour=2026-11-30T09"
    for segment in hour9.glob("*.parquet"):
        segment.write_bytes(b"not parquet")
    assert len(read_predictions("dep", start=ten)) == 5


def test_versions_with_different_columns_are_read_together(keel_env: Any) -> None:
    logger = _logger()
    block = np.array([[1.0, 2.0], [3.0, 4.0]])
    _record(logger, 0, rows=2, inputs=block, input_names=["a", "b"], version="1")
    _record(logger, 1, rows=1, inputs={"c": np.array(["x"], dtype=object)}, version="2")
    logger.flush()
    _record(logger, 2, rows=1, inputs={"d": np.array([7], dtype=np.int64)}, version="3")
    _record(
        logger,
        3,
        status=503,
        error="the queue is full",
        inputs=None,
        outputs=None,
        rows=0,
        version="3",
    )
    logger.close()
    df = read_predictions("dep")
    assert df["version"].tolist() == ["1", "1", "2", "3", "3"]
    assert df["input.a"].tolist()[:2] == [1.0, 3.0]
    assert df["input.b"].tolist()[:2] == [2.0, 4.0]
    assert df["input.c"].tolist()[2] == "x"
    assert df["input.d"].tolist()[3] == 7
    failed = df.iloc[4]
    assert failed["status"] == 503
    assert failed["error"] == "the queue is full"
    assert pd.isna(failed["output.predict"])
    assert failed["row"] == 0


def test_two_dimensional_and_text_outputs_are_split_and_kept(keel_env: Any) -> None:
    logger = _logger()
    proba = np.array([[0.25, 0.75], [0.5, 0.5]])
    labels = np.array(["yes", "no"], dtype=object)
    _record(logger, 0, rows=2, outputs={"predict": labels, "predict_proba": proba})
    logger.close()
    df = read_predictions("dep")
    assert df["output.predict"].tolist() == ["yes", "no"]
    assert df["output.predict_proba.0"].tolist() == [0.25, 0.5]
    assert df["output.predict_proba.1"].tolist() == [0.75, 0.5]


def test_request_ids(keel_env: Any) -> None:
    assert request_id_of("abc") == "abc"
    for hostile in (None, "", "x" * 257, "a\nb", 42, b"id"):
        generated = request_id_of(hostile)
        assert len(generated) == 32
        assert generated != hostile


@pytest.mark.parametrize(
    "options",
    [
        {"sample_rate": 1.5},
        {"sample_rate": -0.1},
        {"sample_rate": "all"},
        {"sample_rate": True},
        {"flush_interval": 0},
        {"flush_interval": 10_000},
        {"flush_rows": 0},
        {"max_rows": -1},
        {"max_records": 1.5},
    ],
)
def test_bad_logger_options_are_invalid_input(keel_env: Any, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match=next(iter(options))):
        PredictionLogger(log_root(), **options)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"deployment": "../etc"}, "deployment"),
        ({"deployment": ""}, "deployment"),
        ({"deployment": 3}, "deployment"),
        ({"start": datetime(2026, 1, 1)}, "naive"),
        ({"start": "yesterday"}, "start"),
        ({"end": True}, "end"),
        ({"start": -5}, "range"),
        ({"start": 2 << 60}, "range"),
        ({"start": 10, "end": 5}, "before"),
        ({"with_feedback": "yes"}, "with_feedback"),
    ],
)
def test_bad_read_arguments_are_invalid_input(
    keel_env: Any, arguments: dict[str, Any], match: str
) -> None:
    deployment = arguments.pop("deployment", "dep")
    with pytest.raises(InvalidInput, match=match):
        read_predictions(deployment, **arguments)


def test_an_unknown_deployment_reads_empty(keel_env: Any) -> None:
    df = read_predictions("never-served")
    assert df.empty
    assert {"request_id", "row", "target"} <= set(df.columns)


def test_through_a_keel_server_the_log_needs_the_artifact_root(
    keel_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import _reset

    monkeypatch.setenv("KEEL_TRACKING_URI", "http://127.0.0.1:9")
    _reset()
    with pytest.raises(InvalidInput, match="KEEL_ARTIFACT_URI"):
        read_predictions("dep")
    monkeypatch.setenv("KEEL_ARTIFACT_URI", str(keel_env.home / "artifacts"))
    _reset()
    assert read_predictions("dep").empty


@pytest.mark.parametrize("name", ["", "../x", "a/b", 7, None, "x" * 200])
def test_read_feedback_refuses_bad_names(keel_env: Any, name: Any) -> None:
    from keel.monitoring.prediction_read import read_feedback

    with pytest.raises(InvalidInput, match="deployment"):
        read_feedback(name)


def test_an_inconsistent_record_is_left_out_and_counted(keel_env: Any) -> None:
    logger = _logger()
    _record(logger, 0, rows=2)  # inputs and outputs of 2 rows: fine
    _record(logger, 1, rows=3)  # fine
    _record(logger, 2, rows=2, outputs={"predict": np.zeros(5)})  # 5 outputs for 2 rows
    _record(logger, 3, rows=2, inputs=np.zeros((2, 3)), input_names=["a"])  # 3 cols, 1 name
    _record(logger, 4, rows=1, outputs={"predict": np.float64(1.0)})  # a scalar
    logger.close()
    assert logger.counters()["invalid"] == 3
    assert sorted(read_predictions("dep")["request_id"].unique()) == ["r0", "r1"]


@pytest.mark.parametrize(
    "bad",
    [
        {"rows": 1.0},
        {"rows": np.int64(1)},
        {"status": "200"},
        {"time_ms": 1.5},
        {"request_id": None},
        {"deployment": b"dep"},
    ],
)
def test_record_refuses_wrong_types(keel_env: Any, bad: dict[str, Any]) -> None:
    logger = _logger()
    fields: dict[str, Any] = {
        "deployment": "dep",
        "model": "m",
        "version": "1",
        "request_id": "r",
        "time_ms": T0,
        "latency_ms": 0.5,
        "status": 200,
        "rows": 1,
    }
    with pytest.raises(InvalidInput, match="record takes"):
        logger.record(**{**fields, **bad})
    logger.close()
    assert logger.counters()["recorded"] == 0


class _FlakyRoot:
    """A log root whose first ``failures`` writes raise, as an unreachable store does."""

    def __init__(self, failures: int) -> None:
        self.inner = log_root()
        self.url = self.inner.url
        self.failures = failures

    def write(self, *args: Any) -> str:
        from keel.errors import StoreUnavailable

        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the store is down")
        return self.inner.write(*args)


def test_a_failed_write_is_retried_at_the_next_flush(keel_env: Any) -> None:
    logger = PredictionLogger(_FlakyRoot(1), flush_interval=3600)  # type: ignore[arg-type]
    for i in range(3):
        _record(logger, 10_000 + i)
    assert logger.flush() == 0
    assert logger.counters()["write_errors"] == 1
    assert logger.buffered_rows == 3  # back in the buffer, nothing lost
    _record(logger, 10_100)
    assert logger.flush() == 1
    logger.close()
    assert logger.counters()["lost"] == 0
    assert read_predictions("dep")["request_id"].tolist() == [
        "r10000",
        "r10001",
        "r10002",
        "r10100",
    ]


def test_what_the_last_flush_cannot_write_is_counted_lost(keel_env: Any) -> None:
    logger = PredictionLogger(_FlakyRoot(10), flush_interval=3600, max_rows=4)  # type: ignore[arg-type]
    for i in range(3):
        _record(logger, 10_000 + i)
    logger.flush()
    assert logger.buffered_rows == 3
    assert _record(logger, 10_003)
    assert not _record(logger, 10_004)  # the retried rows take the room: new ones drop
    logger.close()
    counters = logger.counters()
    assert counters["lost"] == 4
    assert counters["dropped"] == 1
    assert read_predictions("dep").empty


def test_a_hostile_deployment_name_never_reaches_the_store(keel_env: Any) -> None:
    logger = _logger()
    _record(logger, 0, deployment="../../escape")
    _record(logger, 1, deployment="a/b")
    _record(logger, 2)
    logger.close()
    assert logger.counters()["invalid"] == 2
    root = Path(log_root().url)
    assert not list(root.parent.rglob("*escape*"))
    assert read_predictions("dep")["request_id"].tolist() == ["r2"]


def test_keel_serve_logs_a_model_under_a_valid_deployment_name() -> None:
    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.prediction_serving import deployment_name

    assert deployment_name("churn") == "churn"
    for hostile in ("my model=v2", "../../x", "a/b\\c", "", None, "é" * 300, "-x-"):
        name = deployment_name(hostile)
        assert check_deployment_name(name) == name
