"""The prediction log's row conversion, checked against a brute-force build per record.

Records go through a :class:`PredictionLogger` (copied into chunks by
``keel.monitoring.prediction_buffer``, turned into tables by
``keel.monitoring.prediction_rows``) onto a root that keeps every segment it is given;
here a mixed batch is also turned into rows one record at a time, in plain Python, and
the two must agree row for row.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.monitoring import prediction_buffer
from keel.monitoring.prediction_log import PredictionLogger

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


class _Kept:
    """A log root that keeps every segment it is given, as a frame (a copy: the tables it
    gets are views of chunks that are reused once written)."""

    url = "memory://kept"

    def __init__(self, failures: int = 0) -> None:
        self.segments: list[tuple[str, str, pd.DataFrame]] = []
        self.failures = failures

    def write(self, kind: str, deployment: str, hour: str, table: Any) -> str:
        from keel.errors import StoreUnavailable

        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the store is down")
        self.segments.append((deployment, hour, table.to_pandas()))
        return f"{deployment}/{hour}/{len(self.segments)}"

    def rows(self) -> list[dict[str, Any]]:
        return [row for _, _, frame in self.segments for row in frame.to_dict("records")]


def _logger(root: _Kept, **options: Any) -> PredictionLogger:
    options.setdefault("flush_interval", 3600)
    return PredictionLogger(root, **options)  # type: ignore[arg-type]


def _log(logger: PredictionLogger, record: tuple[Any, ...]) -> bool:
    deployment, model, version, rid, time_ms, latency, status, error, rows = record[:9]
    inputs, names, outputs = record[9:]
    return logger.record(
        deployment=deployment,
        model=model,
        version=version,
        request_id=rid,
        time_ms=time_ms,
        latency_ms=latency,
        status=status,
        rows=rows,
        error=error,
        inputs=inputs,
        input_names=names,
        outputs=outputs,
        sampled=True,
    )


def _check(root: _Kept, batch: list[tuple[Any, ...]]) -> None:
    by_record = {r[3]: r for r in batch}
    seen = 0
    for deployment, hour, frame in root.segments:
        assert set(frame["deployment"]) == {deployment}
        assert hour in {"2026-11-30T09", "2026-11-30T10", "2026-11-30T11"}
        for got in frame.to_dict("records"):
            record = by_record[got["request_id"]]
            want = _expected(record)[got["row"]]
            for column in set(got) | set(want):
                assert _same(got.get(column), want.get(column)), (column, got, want)
            seen += 1
    assert seen == sum(r[8] for r in batch)


@pytest.mark.parametrize(
    ("seed", "chunk_rows", "flush_every"),
    [
        (0, None, None),  # default chunks, one flush
        (1, 4, None),  # chunks of 4 rows: many chunks, requests of 5 rows larger than one
        (2, 3, 17),  # and flushes in between, so written chunks are reused
        (3, 1, 1),  # one row a chunk, a flush per request
    ],
)
def test_a_mixed_batch_converts_as_one_record_at_a_time_would(
    seed: int, chunk_rows: int | None, flush_every: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunk_rows is not None:
        monkeypatch.setattr(prediction_buffer, "CHUNK_ROWS", chunk_rows)
    batch = _batch(seed, 200)
    root = _Kept()
    logger = _logger(root)
    for i, record in enumerate(batch):
        assert _log(logger, record)
        if flush_every and i % flush_every == 0:
            logger.flush()
    logger.close()
    assert logger.counters()["invalid"] == 0
    assert logger.counters()["written_rows"] == sum(r[8] for r in batch)
    _check(root, batch)
    # one segment per deployment and hour and flush: a flush's chunks of one pair are one
    keys = [(d, h) for d, h, _ in root.segments]
    assert len(keys) == len(set(keys)) or flush_every


def test_one_deployment_one_hour_is_one_segment_in_batch_order() -> None:
    block = np.arange(6.0).reshape(2, 3)
    root = _Kept()
    logger = _logger(root)
    for i in range(4):
        record = ("dep", "m", "1", f"r{i}", T0, 0.5, 200, None, 2, block + i, NAMES, None)
        _log(logger, (*record[:11], {"p": np.ones(2)}))
    logger.close()
    [(deployment, hour, frame)] = root.segments
    assert (deployment, hour) == ("dep", "2026-11-30T09")
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
    root = _Kept()
    logger = _logger(root)
    assert not _log(logger, bad)
    assert _log(logger, good)
    logger.close()
    assert logger.counters()["invalid"] == 1
    assert [r["request_id"] for r in root.rows()] == ["ok"]


def test_records_whose_arrays_do_not_hold_their_rows_are_left_out_alone() -> None:
    fine = ("dep", "m", "1", "fine", T0, 0.5, 200, None, 2, None, None, {"p": np.ones(2)})
    short = ("dep", "m", "1", "short", T0, 0.5, 200, None, 2, None, None, {"p": np.ones(1)})
    flat = ("dep", "m", "1", "flat", T0, 0.5, 200, None, 2, np.ones(2), None, {"p": np.ones(2)})
    listed = ("dep", "m", "1", "list", T0, 0.5, 200, None, 2, None, None, [np.ones(2)])
    named = ("dep", "m", "1", "named", T0, 0.5, 200, None, 2, np.ones((2, 2)), ("a",), None)
    complex_ = ("dep", "m", "1", "cx", T0, 0.5, 200, None, 1, None, None, {"p": np.ones(1) * 1j})
    root = _Kept()
    logger = _logger(root)
    assert [_log(logger, r) for r in (short, fine, flat, listed, named, complex_)] == [
        False,
        True,
        False,
        False,
        False,
        False,
    ]
    logger.close()
    assert logger.counters()["invalid"] == 5
    assert pd.Series([r["request_id"] for r in root.rows()]).unique().tolist() == ["fine"]


def test_the_callers_arrays_may_change_once_recorded() -> None:
    block = np.ones((3, 2))
    outputs = {"p": np.zeros(3, dtype=np.int64)}
    root = _Kept()
    logger = _logger(root)
    _log(logger, ("dep", "m", "1", "r", T0, 0.5, 200, None, 3, block, ("a", "b"), outputs))
    block[:] = 7.0  # a server reusing its buffers: the log copied them already
    outputs["p"][:] = 9
    logger.close()
    frame = root.segments[0][2]
    assert frame["input.a"].tolist() == [1.0] * 3
    assert frame["output.p"].tolist() == [0] * 3


def test_reused_chunks_never_touch_rows_kept_for_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prediction_buffer, "CHUNK_ROWS", 8)
    root = _Kept(failures=1)
    logger = _logger(root)

    def burst(first: int, value: float) -> None:
        for i in range(first, first + 6):
            block = np.full((2, 2), value)
            record = ("dep", "m", "1", f"r{i}", T0, 0.5, 200, None, 2, block, ("a", "b"), None)
            assert _log(logger, (*record[:11], {"p": np.full(2, value)}))

    burst(0, 1.0)
    assert logger.flush() == 0  # refused: kept, its chunks not reused
    assert logger.counters()["write_errors"] == 1
    burst(100, 2.0)  # new chunks of the same layout meanwhile
    logger.flush()
    burst(200, 3.0)  # now from the pool: the written chunks are reused
    logger.close()
    values = {r["request_id"]: (r["input.a"], r["output.p"]) for r in root.rows()}
    assert len(values) == 18
    for rid, (a, p) in values.items():
        want = 1.0 + int(rid[1:]) // 100
        assert a == p == want, rid


def test_dtypes_changing_between_requests_are_kept_apart_and_read_together() -> None:
    root = _Kept()
    logger = _logger(root)
    names = ("a", "b")
    records = [
        ("dep", "m", "1", "f8", T0, 0.5, 200, None, 1, np.array([[1.5, 2.5]]), names, None),
        ("dep", "m", "1", "i8", T0, 0.5, 200, None, 1, np.array([[3, 4]]), names, None),
        ("dep", "m", "2", "f4", T0, 0.5, 200, None, 1, np.array([[5, 6]], np.float32), names, None),
    ]
    outputs = [{"p": np.array([1])}, {"p": np.array(["yes"])}, {"p": np.array([0.25])}]
    for record, output in zip(records, outputs, strict=True):
        assert _log(logger, (*record[:11], output))
    logger.close()
    [(_, _, frame)] = root.segments  # one segment: the layouts' tables combined
    by_id = frame.set_index("request_id")
    assert by_id.loc["f8", "input.a"] == 1.5
    assert by_id.loc["i8", "input.b"] == 4
    assert by_id.loc["f4", "input.a"] == 5.0
    assert str(by_id.loc["i8", "output.p"]) == "yes"
    assert float(by_id.loc["f4", "output.p"]) == 0.25


def test_sampled_unsampled_and_failed_requests_mix_in_one_segment() -> None:
    root = _Kept()
    logger = PredictionLogger(root, flush_interval=3600, sample_rate=0.5)  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    kept = 0
    for i in range(60):
        status = 503 if i % 7 == 0 else 200
        block = rng.random((2, 2))
        sampled = logger.sample()
        kept += sampled and status == 200
        logger.record(
            deployment="dep",
            model="m",
            version="1",
            request_id=f"r{i}",
            time_ms=T0,
            latency_ms=1.0,
            status=status,
            rows=2,
            error=None if status == 200 else "busy",
            inputs=block if status == 200 else None,
            input_names=("a", "b"),
            outputs={"p": block[:, 0]},
            sampled=sampled,
        )
    logger.close()
    [(_, _, frame)] = root.segments
    assert frame["request_id"].nunique() == 60
    failed = frame[frame["status"] == 503]
    assert (failed["row"] == 0).all()
    assert failed["error"].eq("busy").all()
    assert failed["output.p"].isna().all()
    assert frame.loc[frame["sampled"], "request_id"].nunique() == kept
    assert frame.loc[~frame["sampled"], "input.a"].isna().all()
    assert frame.loc[frame["sampled"], "input.a"].notna().all()


def test_a_higher_rank_output_is_a_list_per_row() -> None:
    root = _Kept()
    logger = _logger(root)
    cube = np.arange(12.0).reshape(3, 2, 2)
    _log(logger, ("dep", "m", "1", "r", T0, 0.5, 200, None, 3, None, None, {"t": cube}))
    logger.close()
    frame = root.segments[0][2]
    assert [list(v) for v in frame["output.t"]] == [list(row.ravel()) for row in cube]


def test_threads_recording_at_once_lose_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setattr(prediction_buffer, "CHUNK_ROWS", 64)
    root = _Kept()
    logger = _logger(root, flush_rows=500)  # the writer flushes while the threads record
    taken: list[list[str]] = [[] for _ in range(4)]

    def work(k: int) -> None:
        for i in range(400):
            rows = 1 + i % 3
            block = np.full((rows, 2), float(k))
            rid = f"t{k}-{i}"
            record = ("dep", "m", "1", rid, T0, 0.5, 200, None, rows, block, ("a", "b"), None)
            if _log(logger, (*record[:11], {"p": np.full(rows, k)})):
                taken[k].append(rid)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    logger.close()
    rows = root.rows()
    assert sorted({r["request_id"] for r in rows}) == sorted(r for ids in taken for r in ids)
    assert len(rows) == logger.counters()["written_rows"] == 4 * sum(1 + i % 3 for i in range(400))
    for row in rows:  # each row holds its own thread's values, not another's
        k = int(row["request_id"][1 : row["request_id"].index("-")])
        assert row["input.a"] == row["output.p"] == k


def test_close_while_recording_keeps_every_record_it_took() -> None:
    import threading

    root = _Kept()
    logger = _logger(root, flush_rows=50)
    taken: list[str] = []
    refused: list[str] = []
    started = threading.Event()

    def work() -> None:
        for i in range(100_000):
            rid = f"r{i}"
            record = ("dep", "m", "1", rid, T0, 0.5, 200, None, 1, None, None, None)
            (taken if _log(logger, (*record[:11], {"p": np.ones(1)})) else refused).append(rid)
            if i == 200:
                started.set()
            if refused:
                return

    thread = threading.Thread(target=work)
    thread.start()
    started.wait(30)
    logger.close()
    thread.join(30)
    assert refused  # the logger stopped taking records once closed
    assert logger.counters()["recorded"] == len(taken)
    assert sorted(r["request_id"] for r in root.rows()) == sorted(taken)
