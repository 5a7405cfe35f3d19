"""The serving path's queue into the prediction log: ``PredictionLogger.submit``.

Submitted requests are taken in many at a time (``take_pending``); whatever the moment
they are taken in (a full queue, a flush, ``counters()``, ``close()``), they must end up
exactly as :meth:`PredictionLogger.record` would have written them, and a bad one must be
counted, never raised inside the serving loop.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from tests.monitoring.test_prediction_rows import T0, _batch, _check, _Kept, _logger

from keel.monitoring import prediction_buffer, prediction_intake
from keel.monitoring.prediction_log import PredictionLogger


def _submit(logger: PredictionLogger, record: tuple[Any, ...]) -> None:
    deployment, model, version, rid, time_ms, latency, status, error, rows = record[:9]
    inputs, names, outputs = record[9:]
    logger.submit(
        deployment, model, version, rid, time_ms, latency, status, rows, error,
        inputs, names, outputs, True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("pending", "chunk_rows", "flush_every"),
    [
        (1, None, None),  # taken in one by one
        (7, 4, None),  # in sevens, into chunks of 4 rows
        (64, 3, 17),  # flushes in between take in part of a queue
        (1000, None, None),  # never full: the close takes them all in
    ],
)
def test_submitted_requests_are_written_as_recorded_ones_would_be(
    pending: int, chunk_rows: int | None, flush_every: int | None, monkeypatch: Any
) -> None:
    monkeypatch.setattr(prediction_intake, "PENDING_RECORDS", pending)
    if chunk_rows is not None:
        monkeypatch.setattr(prediction_buffer, "CHUNK_ROWS", chunk_rows)
    batch = _batch(11, 200)
    root = _Kept()
    logger = _logger(root)
    for i, record in enumerate(batch):
        _submit(logger, record)
        if flush_every and i % flush_every == 0:
            logger.flush()
    logger.close()
    counters = logger.counters()
    assert counters["invalid"] == counters["dropped"] == 0
    assert counters["recorded"] == len(batch)
    assert counters["written_rows"] == sum(r[8] for r in batch)
    _check(root, batch)


def test_a_queue_full_of_rows_is_taken_in_before_it_is_full_of_requests(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(prediction_intake, "PENDING_ROWS", 10)
    logger = _logger(_Kept())
    block = np.ones((4, 3))
    record = ("dep", "m", "1", "r", T0, 0.5, 200, None, 4, block, ("a", "b", "c"), None)
    _submit(logger, record)
    _submit(logger, record)
    assert logger.buffered_rows == 0  # 8 rows queued, none taken in yet
    _submit(logger, record)
    assert logger.buffered_rows == 12  # the third passed 10 rows: all three taken in
    logger.close()


def test_bad_submissions_are_counted_not_raised() -> None:
    good = ("dep", "m", "1", "ok", T0, 0.5, 200, None, 1, None, None, {"p": np.ones(1)})
    bad = [
        ("dep", "m", "1", "rows", T0, 0.5, 200, None, "1", None, None, None),  # rows as text
        ("dep", "m", "1", "time", None, 0.5, 200, None, 1, None, None, None),  # no time
        (None, "m", "1", "nodep", T0, 0.5, 200, None, 1, None, None, None),  # no deployment
        ("../x", "m", "1", "escape", T0, 0.5, 200, None, 1, None, None, None),  # a path
        ("dep", "m", "1", 7, T0, 0.5, 200, None, 1, None, None, None),  # an id not text
        ("dep", "m", "1", "short", T0, 0.5, 200, None, 2, None, None, {"p": np.ones(1)}),
        ("dep", "m", "1", "late", 2**70, 0.5, 200, None, 1, None, None, None),  # past int64
    ]
    root = _Kept()
    logger = _logger(root)
    for record in [*bad, good]:
        _submit(logger, record)
    assert logger.take_pending() == len(bad) + 1
    logger.close()
    counters = logger.counters()
    assert counters["invalid"] == len(bad)
    assert counters["recorded"] == 1
    assert [r["request_id"] for r in root.rows()] == ["ok"]


def test_what_was_submitted_before_close_is_written_and_after_it_dropped() -> None:
    root = _Kept()
    logger = _logger(root)
    record = ("dep", "m", "1", "before", T0, 0.5, 200, None, 1, None, None, {"p": np.ones(1)})
    _submit(logger, record)
    assert logger.counters()["recorded"] == 1  # counters take the queue in first
    _submit(logger, (*record[:3], "queued", *record[4:]))
    logger.close()
    _submit(logger, (*record[:3], "after", *record[4:]))
    counters = logger.counters()
    assert counters["dropped"] == 1
    assert sorted(r["request_id"] for r in root.rows()) == ["before", "queued"]


def test_submits_from_several_threads_while_flushing_lose_nothing(monkeypatch: Any) -> None:
    monkeypatch.setattr(prediction_intake, "PENDING_RECORDS", 5)
    monkeypatch.setattr(prediction_buffer, "CHUNK_ROWS", 16)
    root = _Kept()
    logger = _logger(root)
    stop = threading.Event()

    def submitter(worker: int) -> None:
        for i in range(400):
            block = np.full((2, 2), float(worker))
            _submit(
                logger,
                ("dep", "m", "1", f"w{worker}-{i}", T0, 0.5, 200, None, 2, block, ("a", "b"), None),
            )

    def flusher() -> None:
        while not stop.is_set():
            logger.flush()

    workers = [threading.Thread(target=submitter, args=(w,)) for w in range(4)]
    flushing = threading.Thread(target=flusher)
    flushing.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    stop.set()
    flushing.join()
    logger.close()
    rows = root.rows()
    assert len(rows) == 4 * 400 * 2
    assert len({r["request_id"] for r in rows}) == 4 * 400
    for row in rows:  # every row still holds its own worker's values
        assert row["input.a"] == row["input.b"] == float(row["request_id"][1])


def _runs(seed: int, count: int, most_rows: int = 3) -> list[tuple[Any, ...]]:
    """Requests of 1 to ``most_rows`` rows in runs of one layout (what a served model
    sends: the fast path of the take-in), each run broken by a request that differs in one
    way that matters."""
    rng = np.random.default_rng(seed)
    names = ("a", "b", "c")
    breaks = [
        lambda r: {**r, "block": r["block"].astype(np.float32)},  # another dtype
        lambda r: {**r, "names": list(names)},  # a list of the same names
        lambda r: {**r, "names": ("x", "y", "z")},  # other names
        lambda r: {**r, "outputs": dict(reversed(list(r["outputs"].items())))},  # key order
        lambda r: {**r, "outputs": {**r["outputs"], "p": r["outputs"]["p"].astype(np.int32)}},
        lambda r: {**r, "outputs": {"p": r["outputs"]["p"]}},  # an output fewer
        lambda r: {**r, "outputs": {**r["outputs"], "p": r["outputs"]["p"][:-1]}},  # invalid
        lambda r: {**r, "rows": r["rows"] + 1},  # rows the arrays lack: invalid
        lambda r: {**r, "status": 503, "error": "busy"},
        lambda r: {**r, "sampled": False},
        lambda r: {**r, "deployment": "other"},
        lambda r: {**r, "time_ms": -1},  # invalid
        lambda r: {**r, "block": r["block"][:, :2]},  # a narrower block: invalid for names
        lambda r: {**r, "block": np.asfortranarray(r["block"])},  # same layout, other order
    ]
    out: list[tuple[Any, ...]] = []
    while len(out) < count:
        for _ in range(int(rng.integers(1, 30))):
            rows = int(rng.integers(1, most_rows + 1))
            r = {
                "deployment": "dep", "rows": rows, "status": 200, "error": None,
                "block": rng.random((rows, 3)), "names": names, "sampled": True,
                "time_ms": T0 + int(rng.integers(0, 2 * 3_600_000)),
                "outputs": {"p": rng.integers(0, 2, rows), "q": rng.random((rows, 2))},
            }  # fmt: skip
            if rng.random() < 0.1:
                r = breaks[int(rng.integers(len(breaks)))](r)
            i = len(out)
            out.append(
                (r["deployment"], "m", "1", f"r{i}", r["time_ms"], float(i), r["status"],
                 r["rows"], r["error"], r["block"], r["names"], r["outputs"], r["sampled"])
            )  # fmt: skip
    return out


@pytest.mark.parametrize(
    ("seed", "chunk_rows", "bounds", "most_rows"),
    [
        (0, None, {}, 3),
        (1, 5, {}, 3),  # runs cut by full chunks
        (2, 7, {"max_rows": 150}, 3),  # and by the rows bound: the rest dropped
        (3, None, {"max_records": 90}, 3),  # by the requests bound
        # runs of many rows a request: transposed block by block, not joined first
        (4, None, {}, 2 * prediction_intake._FEW_ROWS + 20),
        (5, 40, {}, 2 * prediction_intake._FEW_ROWS + 20),
    ],
)
def test_runs_taken_in_at_once_count_and_write_as_one_by_one(
    seed: int,
    chunk_rows: int | None,
    bounds: dict[str, int],
    most_rows: int,
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(prediction_intake, "PENDING_RECORDS", 64)
    if chunk_rows is not None:
        monkeypatch.setattr(prediction_buffer, "CHUNK_ROWS", chunk_rows)
    requests = _runs(seed, 600, most_rows)
    one, queued = _Kept(), _Kept()
    by_record, by_queue = _logger(one, **bounds), _logger(queued, **bounds)
    for request in requests:
        by_record.record(
            deployment=request[0], model=request[1], version=request[2],
            request_id=request[3], time_ms=request[4], latency_ms=request[5],
            status=request[6], rows=request[7], error=request[8], inputs=request[9],
            input_names=request[10], outputs=request[11], sampled=request[12],
        )  # fmt: skip
        by_queue.submit(*request)
    by_queue.take_pending()
    counts = by_record.counters()
    assert counts == by_queue.counters()
    assert counts["invalid"] > 0
    assert counts["recorded"] > 0
    assert ("max_rows" in bounds or "max_records" in bounds) == (counts["dropped"] > 0)
    by_record.close()
    by_queue.close()

    def key(row: dict[str, Any]) -> tuple[str, int]:
        return row["request_id"], row["row"]

    want, got = sorted(one.rows(), key=key), sorted(queued.rows(), key=key)
    assert len(got) == len(want) > 0
    for a, b in zip(got, want, strict=True):
        assert a.keys() == b.keys()
        for column in a:
            assert _same_value(a[column], b[column]), (column, a, b)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)  # NaN (a column one layout lacks) on both
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return bool(a == b) or (a is None and b is None)
