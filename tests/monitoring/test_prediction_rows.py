"""The prediction log's row conversion, checked against a brute-force build per record.

``keel.monitoring.prediction_rows`` groups a batch by deployment, hour and layout and
concatenates columns; here a mixed batch is also turned into rows one record at a time,
in plain Python, and the two must agree row for row.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.monitoring import prediction_rows
from keel.monitoring.prediction_rows import segment_table, segments_of, tables_of

T0 = int(datetime(2026, 11, 30, 9, 30, tzinfo=UTC).timestamp() * 1000)  # batches span 09-11
NAMES = ("a", "b", "c")


def _batch(seed: int, count: int) -> list[tuple[Any, ...]]:
    """Records of every kind ``keel serve`` and ``keel server`` make: a 2-D block with
    names, 1-D columns, no inputs (unsampled), a failed request, 2-D and text outputs."""
    rng = np.random.default_rng(seed)
    batch = []
    for i in range(count):
        rows = int(rng.integers(1, 6))
        kind = i % 5
        inputs: Any = None
        names: Any = None
        outputs: Any = {"predict": rng.integers(0, 2, rows)}
        status, error = 200, None
        if kind == 0:
            inputs, names = rng.random((rows, 3)), NAMES
        elif kind == 1:
            inputs = {"x": rng.random(rows), "s": np.array([f"t{i}"] * rows, dtype=object)}
        elif kind == 2:
            outputs["proba"] = rng.random((rows, 2))
        elif kind == 3:
            rows, outputs, status, error = 1, None, 503, "queue full"
        else:
            inputs, names = rng.random((rows, 3)), list(NAMES)  # a list, not the tuple
            outputs = {"label": np.array(["yes"] * rows, dtype=object)}
        deployment = "dep" if i % 3 else "other"
        time_ms = T0 + int(rng.integers(0, 2 * 3_600_000))
        batch.append(
            (
                deployment,
                "m",
                str(1 + i % 2),
                f"r{i}",
                time_ms,
                float(i),
                status,
                error,
                rows,
                inputs,
                names,
                outputs,
            )
        )
    return batch


def _expected(record: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The rows of one record, built the slow, obvious way."""
    deployment, model, version, rid, time_ms, latency, status, error, rows = record[:9]
    inputs, names, outputs = record[9:]
    out = []
    for j in range(rows):
        row: dict[str, Any] = {
            "request_id": rid,
            "row": j,
            "deployment": deployment,
            "model": model,
            "version": version,
            "time_ms": time_ms,
            "latency_ms": latency,
            "status": status,
            "error": error,
            "sampled": inputs is not None,
        }
        if isinstance(inputs, np.ndarray):
            for k, name in enumerate(names):
                row[f"input.{name}"] = inputs[j, k]
        elif inputs is not None:
            for name, values in inputs.items():
                row[f"input.{name}"] = values[j]
        for name, values in (outputs or {}).items():
            if values.ndim == 2:
                for k in range(values.shape[1]):
                    row[f"output.{name}.{k}"] = values[j, k]
            else:
                row[f"output.{name}"] = values[j]
        out.append(row)
    return out


def _same(got: Any, want: Any) -> bool:
    missing = got is None or (isinstance(got, float) and math.isnan(got))
    if want is None:
        return missing
    return not missing and got == want


@pytest.mark.parametrize(("seed", "chunk"), [(0, None), (1, None), (2, (7, 11)), (3, (1, 1))])
def test_a_mixed_batch_converts_as_one_record_at_a_time_would(
    seed: int, chunk: tuple[int, int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunk is not None:  # converted a few records at a time, yielding the GIL between
        monkeypatch.setattr(prediction_rows, "CHUNK_RECORDS", chunk[0])
        monkeypatch.setattr(prediction_rows, "CHUNK_ROWS", chunk[1])
    batch = _batch(seed, 200)
    rejected: list[tuple[Any, ...]] = []
    tables = tables_of(batch, rejected)
    assert not rejected
    by_record = {r[3]: r for r in batch}
    seen = 0
    for (deployment, hour), table in tables.items():
        frame = table.to_pandas()
        assert set(frame["deployment"]) == {deployment}
        for got in frame.to_dict("records"):
            record = by_record[got["request_id"]]
            want = _expected(record)[got["row"]]
            for column in set(got) | set(want):
                assert _same(got.get(column), want.get(column)), (column, got, want)
            seen += 1
        assert hour in {"2026-11-30T09", "2026-11-30T10", "2026-11-30T11"}
    assert seen == sum(r[8] for r in batch)


def test_one_deployment_one_hour_is_one_segment_in_batch_order() -> None:
    block = np.arange(6.0).reshape(2, 3)
    batch = [
        ("dep", "m", "1", f"r{i}", T0, 0.5, 200, None, 2, block + i, NAMES, {"p": np.ones(2)})
        for i in range(4)
    ]
    segments = segments_of(batch)
    assert list(segments) == [("dep", "2026-11-30T09")]
    table = segment_table(segments[("dep", "2026-11-30T09")])
    assert table is not None
    frame = table.to_pandas()
    assert frame["request_id"].tolist() == ["r0", "r0", "r1", "r1", "r2", "r2", "r3", "r3"]
    assert frame["row"].tolist() == [0, 1] * 4
    assert frame["input.c"].tolist() == [2.0, 5.0, 3.0, 6.0, 4.0, 7.0, 5.0, 8.0]


@pytest.mark.parametrize(
    ("deployment", "time_ms"),
    [
        ("../escape", T0),  # no deployment name: never a path
        ("dep", -1),  # before 1970
        ("dep", 253_402_300_800_000),  # year 10000: no hour name
        ("dep", 2**70),  # past int64
    ],
)
def test_a_record_without_a_partition_is_left_out(deployment: str, time_ms: int) -> None:
    good = ("dep", "m", "1", "ok", T0, 0.5, 200, None, 1, None, None, None)
    bad = (deployment, "m", "1", "bad", time_ms, 0.5, 200, None, 1, None, None, None)
    for batch in ([bad], [bad, good], [good, bad]):
        rejected: list[tuple[Any, ...]] = []
        tables = tables_of(batch, rejected)
        assert rejected == [bad]
        rows = [r for t in tables.values() for r in t.column("request_id").to_pylist()]
        assert rows == (["ok"] if good in batch else [])


def test_records_whose_arrays_do_not_hold_their_rows_are_left_out_alone() -> None:
    fine = ("dep", "m", "1", "fine", T0, 0.5, 200, None, 2, None, None, {"p": np.ones(2)})
    short = ("dep", "m", "1", "short", T0, 0.5, 200, None, 2, None, None, {"p": np.ones(1)})
    flat = ("dep", "m", "1", "flat", T0, 0.5, 200, None, 2, np.ones(2), None, {"p": np.ones(2)})
    listed = ("dep", "m", "1", "list", T0, 0.5, 200, None, 2, None, None, [np.ones(2)])
    rejected: list[tuple[Any, ...]] = []
    table = segment_table([short, fine, flat, listed], rejected)
    assert table is not None
    assert rejected == [short, flat, listed]
    assert pd.Series(table.column("request_id").to_pylist()).unique().tolist() == ["fine"]
    assert segment_table([short], []) is None


def test_a_large_segment_gives_the_gil_away_between_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    yields: list[int] = []
    monkeypatch.setattr(prediction_rows, "CHUNK_RECORDS", 10)
    monkeypatch.setattr(prediction_rows, "_let_others_run", lambda: yields.append(1))
    batch = [
        ("dep", "m", "1", f"r{i}", T0, 0.5, 200, None, 1, None, None, {"p": np.ones(1)})
        for i in range(100)
    ]
    table = segment_table(batch)
    assert table is not None
    assert table.column("request_id").to_pylist() == [f"r{i}" for i in range(100)]
    # 10 chunks of layout keys, 10 of conversion: the serving loop can run between each
    assert len(yields) >= 18
