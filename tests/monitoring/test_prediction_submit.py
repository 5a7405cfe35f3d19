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
