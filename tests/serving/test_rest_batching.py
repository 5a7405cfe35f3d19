"""Adaptive batching: concurrent requests share predict calls, each gets its own rows back,
and a full queue answers 503 with Retry-After instead of growing.

Merging is made deterministic with a gate: the first batch is held inside predict until
the other requests are queued, so they must all land in the following batch(es).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from oip_support import WAIT_S, Churn, Gated, error_of, keel_home, loaded, register_churn

from keel.errors import Overloaded
from keel.serving._uvicorn import serving
from keel.serving.batching import MicroBatcher
from keel.serving.rest import create_app
from keel.serving.runtime import ModelRuntime
from keel.serving.service import ModelService

REQUESTS = 64


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Churn:
    with keel_home(tmp_path_factory.mktemp("batching-home")) as home:
        return register_churn(home)


def _wait_until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never held")
        time.sleep(0.005)


def _body(rows: np.ndarray, request_id: str) -> dict:
    return {
        "id": request_id,
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": list(rows.shape), "data": rows.tolist()}
        ],
        "outputs": [{"name": "predict_proba"}, {"name": "predict"}],
    }


async def _fire(url: str, bodies: list[dict]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(timeout=WAIT_S, limits=limits) as client:
        return await asyncio.gather(*(client.post(url, json=b) for b in bodies))


def _distinct_requests(churn: Churn) -> list[tuple[int, int]]:
    """(start, rows) for each request: 1 or 2 rows each, no two alike."""
    spans, start = [], 0
    for i in range(REQUESTS):
        n = 1 + i % 2
        spans.append((start, n))
        start += n
    return spans


def _check_each_got_its_own_rows(
    churn: Churn, spans: list[tuple[int, int]], responses: list[httpx.Response]
) -> None:
    X = churn.X.to_numpy()
    for i, ((start, n), response) in enumerate(zip(spans, responses, strict=True)):
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["id"] == f"r{i}"
        outputs = {o["name"]: o for o in doc["outputs"]}
        frame = pd.DataFrame(X[start : start + n], columns=churn.X.columns)
        assert outputs["predict"]["shape"] == [n]
        assert outputs["predict"]["data"] == churn.model.predict(frame).tolist()
        proba = np.array(outputs["predict_proba"]["data"]).reshape(
            outputs["predict_proba"]["shape"]
        )
        np.testing.assert_allclose(proba, churn.model.predict_proba(frame))


@pytest.fixture
def churn_service(churn: Churn) -> ModelService:
    with keel_home(churn.home):
        service = ModelService.from_uri(churn.uri, max_batch_size=256, max_latency_ms=2.0)
        service.load()
    return service


def test_concurrent_requests_are_merged_and_split_back(
    churn: Churn, churn_service: ModelService
) -> None:
    runtime = churn_service.runtime
    assert runtime is not None
    gate, entered = threading.Event(), threading.Event()
    real_run = runtime.run

    def gated_run(batch: list) -> Any:
        entered.set()
        if not gate.wait(WAIT_S):
            raise RuntimeError("gate never opened")
        return real_run(batch)

    runtime.run = gated_run  # type: ignore[method-assign]
    spans = _distinct_requests(churn)
    X = churn.X.to_numpy()
    bodies = [_body(X[s : s + n], f"r{i}") for i, (s, n) in enumerate(spans)]
    with serving(create_app(churn_service)) as base:
        url = f"{base}/v2/models/churn/infer"
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(lambda: httpx.post(url, json=bodies[0], timeout=WAIT_S))
            assert entered.wait(WAIT_S)
            rest = pool.submit(asyncio.run, _fire(url, bodies[1:]))
            _wait_until(lambda: churn_service.batcher.queued == REQUESTS - 1)
            gate.set()
            responses = [first.result(WAIT_S), *rest.result(WAIT_S)]
    _check_each_got_its_own_rows(churn, spans, responses)
    stats = churn_service.batcher.stats
    assert stats.requests == REQUESTS
    assert stats.batches == 2  # the held first request, then the 63 queued behind it
    assert churn_service.predict_calls == 2


def test_free_running_concurrency_keeps_rows_with_their_callers(
    churn: Churn, churn_service: ModelService
) -> None:
    spans = _distinct_requests(churn)
    X = churn.X.to_numpy()
    bodies = [_body(X[s : s + n], f"r{i}") for i, (s, n) in enumerate(spans)]
    with serving(create_app(churn_service)) as base:
        responses = asyncio.run(_fire(f"{base}/v2/models/churn/infer", bodies))
    _check_each_got_its_own_rows(churn, spans, responses)
    assert churn_service.batcher.stats.requests == REQUESTS


def test_a_full_queue_answers_503_with_retry_after() -> None:
    model = Gated()
    runtime = ModelRuntime(
        loaded(model, columns=["a", "b"], example=[[1.0, 2.0]]), name="slow", version="1"
    )
    service = ModelService(lambda: runtime, max_queue=2, max_batch_size=1)
    service.load()
    model.arm()

    def body(v: float) -> dict:
        return {
            "inputs": [
                {"name": "a", "datatype": "FP64", "shape": [1], "data": [v]},
                {"name": "b", "datatype": "FP64", "shape": [1], "data": [1.0]},
            ]
        }

    with serving(create_app(service)) as base:
        url = f"{base}/v2/models/slow/infer"
        with ThreadPoolExecutor(3) as pool:
            running = pool.submit(httpx.post, url, json=body(1.0), timeout=WAIT_S)
            assert model.entered.wait(WAIT_S)  # request 1 is inside predict
            queued = [pool.submit(httpx.post, url, json=body(v), timeout=WAIT_S) for v in (2, 3)]
            _wait_until(lambda: service.batcher.queued == 2)  # the queue is now full
            refused = httpx.post(url, json=body(4.0), timeout=WAIT_S)
            model.gate.set()
            done = [running.result(WAIT_S), *(f.result(WAIT_S) for f in queued)]
        metrics = httpx.get(f"{base}/metrics").text
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "capacity" in error_of(refused)
    assert [r.status_code for r in done] == [200, 200, 200]
    assert [r.json()["outputs"][0]["data"] for r in done] == [[2.0], [3.0], [4.0]]
    assert "keel_serving_rejected_total 1.0" in metrics.splitlines()


def test_the_batcher_never_exceeds_max_batch_size_and_splits_in_order() -> None:
    seen: list[list[int]] = []
    gate = threading.Event()

    def run_batch(items: list[int]) -> list[int]:
        gate.wait(WAIT_S)
        seen.append(list(items))
        return [i * 10 for i in items]

    async def scenario() -> list[int]:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            run_batch, lambda item: 3, max_batch_size=7, max_latency_ms=0, max_queue=100
        )
        tasks = [asyncio.create_task(batcher.submit(i)) for i in range(10)]
        await asyncio.sleep(0)
        gate.set()
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [i * 10 for i in range(10)]
    assert all(len(batch) * 3 <= 7 for batch in seen)
    assert [i for batch in seen for i in batch] == list(range(10))


def test_a_full_batcher_raises_overloaded_without_queueing() -> None:
    gate = threading.Event()

    async def scenario() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            lambda items: (gate.wait(WAIT_S), items)[1],
            lambda item: 1,
            max_queue=1,
            max_batch_size=1,
            retry_after=3.0,
        )
        first = asyncio.create_task(batcher.submit(1))
        while batcher.stats.batches == 0:  # the worker holds item 1 inside run_batch
            await asyncio.sleep(0.001)
        second = asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as info:
            await batcher.submit(3)
        assert info.value.retry_after == 3.0
        assert batcher.queued == 1
        gate.set()
        assert await first == 1
        assert await second == 2
        await batcher.close()

    asyncio.run(scenario())


def test_a_lone_caller_does_not_wait_for_company() -> None:
    async def scenario() -> int:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            lambda items: items, lambda item: 1, max_latency_ms=600_000
        )
        try:  # a ten-minute wait would trip this timeout: the wait is skipped when alone
            return await asyncio.wait_for(batcher.submit(7), WAIT_S)
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == 7


def test_the_cli_defaults_are_the_measured_ones() -> None:
    import inspect

    from keel.cli.serve import serve
    from keel.serving import batching

    params = inspect.signature(serve).parameters
    assert params["max_batch_size"].default == batching.DEFAULT_MAX_BATCH_SIZE
    assert params["max_latency_ms"].default == batching.DEFAULT_MAX_LATENCY_MS
    assert params["max_queue"].default == batching.DEFAULT_MAX_QUEUE


def _thread_recorder() -> tuple[list[tuple[str, list[int]]], Any]:
    seen: list[tuple[str, list[int]]] = []

    def run_batch(items: list[int]) -> list[int | BaseException]:
        seen.append((threading.current_thread().name, list(items)))
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]

    return seen, run_batch


def test_a_lone_caller_of_a_cheap_model_predicts_on_the_loop() -> None:
    seen, run_batch = _thread_recorder()

    async def scenario() -> list[int]:
        # a bound no run of this model can pass, even descheduled on a loaded machine (the
        # default 2 ms can be, and then the model is rightly taken for a slow one)
        batcher: MicroBatcher[int, int] = MicroBatcher(
            run_batch, lambda item: 1, inline_max_ms=60_000
        )
        try:
            first = await batcher.submit(1)  # cost unknown yet: the worker's thread
            rest = [await batcher.submit(i) for i in (2, 3)]
            with pytest.raises(ValueError, match="bad -1"):  # its own error, raised inline
                await batcher.submit(-1)
            assert batcher.stats.batches == 4
            assert batcher.stats.requests == 4
            return [first, *rest]
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [10, 20, 30]
    loop_thread = threading.current_thread().name
    assert seen[0][0].startswith("keel-predict")
    assert [name for name, _ in seen[1:]] == [loop_thread] * 3


def test_a_model_slower_than_the_inline_bound_stays_off_the_loop() -> None:
    names: list[str] = []

    def slow(items: list[int]) -> list[int]:
        names.append(threading.current_thread().name)
        time.sleep(0.01)  # 10 ms a batch, above the 2 ms inline bound
        return items

    async def scenario() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(slow, lambda item: 1)
        try:
            for i in range(3):
                assert await batcher.submit(i) == i
        finally:
            await batcher.close()

    asyncio.run(scenario())
    assert len(names) == 3
    assert all(name.startswith("keel-predict") for name in names)


def test_no_inline_bound_means_never_inline() -> None:
    seen, run_batch = _thread_recorder()

    async def scenario() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(run_batch, lambda i: 1, inline_max_ms=0)
        try:
            for i in range(3):
                await batcher.submit(i)
        finally:
            await batcher.close()

    asyncio.run(scenario())
    assert all(name.startswith("keel-predict") for name, _ in seen)


def test_callers_arriving_together_are_merged_not_run_inline_one_by_one() -> None:
    seen, run_batch = _thread_recorder()

    async def scenario() -> list[int]:
        batcher: MicroBatcher[int, int] = MicroBatcher(run_batch, lambda item: 1)
        try:
            await batcher.submit(0)  # measured: inline is allowed from now on
            await batcher.submit(0)
            assert len(seen) == 2
            return list(await asyncio.gather(*(batcher.submit(i) for i in range(1, 9))))
        finally:
            await batcher.close()

    assert asyncio.run(scenario()) == [i * 10 for i in range(1, 9)]
    later = seen[2:]
    assert sorted(i for _, batch in later for i in batch) == list(range(1, 9))
    assert max(len(batch) for _, batch in later) > 1  # merged, on the worker's thread
    assert len(later) < 8
