"""The demo's traffic generator against a small stand-in server on 127.0.0.1: it counts
right answers per version and route, catches wrong, unknown and failed answers, and
keeps to its request budget and to ``stop``.

The stand-in answers like a deployment: OIP on ``/v2/models/<name>/infer``, MLflow on
``/deployments/<name>/invocations``, naming its version in ``Keel-Backend``; how it
answers is set per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keel.demo.traffic import MAX_FAILURES_KEPT, Traffic
from keel.errors import NotFound
from keel.serving._uvicorn import serving

ROWS = pd.DataFrame({"a": [0.1, 0.9, 0.4, 0.7, 0.2, 0.8], "b": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
LABELS = np.array([0, 1, 0, 1, 1, 1])
TRUTH = (ROWS["a"] > 0.5).astype(int).to_numpy()  # what both versions predict: 0 1 0 1 0 1

# (route, first value of the row) -> (status, backend header, answer)
Answer = Callable[[str, float], tuple[int, str, int]]


def _right(route: str, a: float) -> tuple[int, str, int]:
    return 200, "m/1" if route == "oip" else "m/2", int(a > 0.5)


@contextmanager
def stand_in(answer: Answer) -> Iterator[str]:
    async def infer(request: Request) -> JSONResponse:
        doc = await request.json()
        status, backend, value = answer("oip", doc["inputs"][0]["data"][0])
        body = {"id": doc["id"], "outputs": [{"name": "predict", "data": [value]}]}
        return JSONResponse(body, status_code=status, headers={"Keel-Backend": backend})

    async def invocations(request: Request) -> JSONResponse:
        doc = await request.json()
        split = doc["dataframe_split"]
        assert split["columns"] == ["a", "b"]
        status, backend, value = answer("invocations", split["data"][0][0])
        return JSONResponse(
            {"predictions": [value]}, status_code=status, headers={"Keel-Backend": backend}
        )

    app = Starlette(
        routes=[
            Route("/v2/models/dep/infer", infer, methods=["POST"]),
            Route("/deployments/dep/invocations", invocations, methods=["POST"]),
        ]
    )
    with serving(app, lifespan="off", what="the stand-in server") as url:
        yield url


def _traffic(url: str, **options: Any) -> Traffic:
    expected = {"m/1": TRUTH, "m/2": TRUTH}
    settings = {"rate": 500.0, "max_requests": 60, "max_seconds": 60.0, **options}
    return Traffic(url, "dep", ROWS, LABELS, expected, **settings)


def test_right_answers_are_counted_per_version_and_route_within_the_budget() -> None:
    with stand_in(_right) as url, _traffic(url) as traffic:
        traffic._thread.join(60)  # the budget ends it
        assert not traffic.running
        counts = traffic.stop()

    assert counts.sent == 60
    assert counts.failed == 0, counts.failures
    assert counts.by_route == {"oip": 30, "invocations": 30}  # alternating
    assert counts.answered == {"m/1": 30, "m/2": 30}
    # rows cycle 0..5; the even requests (OIP) meet rows 0, 2, 4, the odd ones 1, 3, 5
    assert counts.correct == {"m/1": 20, "m/2": 30}  # row 4's label is 1, both predict 0
    assert counts.accuracy("m/1") == 20 / 30
    assert counts.accuracy("m/3") is None


def test_wrong_unknown_and_failed_answers_are_failures_not_answers() -> None:
    def answer(route: str, a: float) -> tuple[int, str, int]:
        if route == "invocations":
            return 200, "m/2", int(a <= 0.5)  # m/2 answers the opposite of its prediction
        if a == 0.1:
            return 500, "m/1", 0  # row 0 fails
        if a == 0.4:
            return 200, "m/9", 0  # row 2 comes from a version nobody deployed
        return 200, "m/1", int(a > 0.5)

    with stand_in(answer) as url, _traffic(url, max_requests=12) as traffic:
        traffic._thread.join(60)
        counts = traffic.stop()

    assert counts.sent == 12
    assert counts.answered == {"m/1": 2}  # only row 4, twice
    assert counts.failed == 10
    text = "\n".join(counts.failures)
    assert "m/2 answered 0 for row 1, but that version predicts 1" in text
    assert "HTTP 500" in text
    assert "unknown version 'm/9'" in text


def test_stop_ends_the_traffic_before_its_budget_and_failures_kept_are_bounded() -> None:
    with stand_in(lambda route, a: (503, "m/1", 0)) as url:
        traffic = _traffic(url, rate=200.0, max_requests=10**6)
        with traffic:
            assert not traffic.wait_for("m/1", 1, timeout=1.0)  # nothing right ever comes
        counts = traffic.counts()

    assert not traffic.running
    assert 0 < counts.sent < 10**6
    assert counts.failed == counts.sent
    assert len(counts.failures) == min(counts.sent, MAX_FAILURES_KEPT)


def test_a_version_named_later_has_its_held_answers_judged_then() -> None:
    def answer(route: str, a: float) -> tuple[int, str, int]:
        return 200, "m/3", int(a > 0.5)  # a version the traffic was not told about

    with stand_in(answer) as url:
        traffic = Traffic(
            url, "dep", ROWS, LABELS, {"m/1": TRUTH}, rate=500.0, max_requests=12,
            routes=("invocations",),
        )  # fmt: skip
        with traffic:
            traffic._thread.join(60)
            assert traffic.counts().answered == {}  # held, neither right nor failed
            traffic.expect("m/3", TRUTH)
            counts = traffic.stop()

    assert counts.failed == 0, counts.failures
    assert counts.answered == {"m/3": 12}
    assert counts.by_route == {"invocations": 12}
    labelled = traffic.labelled("m/3")
    assert len(labelled) == 12
    # each row twice, answered in any order by the concurrent clients
    assert sorted(label for _, label in labelled) == sorted(LABELS.tolist() * 2)


def test_traffic_refuses_an_unknown_route() -> None:
    import pytest

    with pytest.raises(ValueError, match="routes must be some of"):
        Traffic("http://127.0.0.1:1", "dep", ROWS, LABELS, {}, routes=("grpc",))
    with pytest.raises(ValueError, match="routes must be some of"):
        Traffic("http://127.0.0.1:1", "dep", ROWS, LABELS, {}, routes=())


def test_answers_of_a_version_nobody_named_are_judged_by_what_resolve_gives_at_stop() -> None:
    # a rollback to a version of the deployment's history the caller had not loaded
    def answer(route: str, a: float) -> tuple[int, str, int]:
        if a == 0.4:
            return 200, "m/9", 0  # row 2: a name the registry does not know
        return 200, "m/3", 0 if a == 0.9 else int(a > 0.5)  # m/3 is wrong on row 1

    asked: list[str] = []

    def resolve(key: str) -> np.ndarray:
        asked.append(key)
        if key == "m/9":
            raise NotFound("model version m/9 does not exist")
        return TRUTH

    with stand_in(answer) as url:
        traffic = Traffic(
            url, "dep", ROWS, LABELS, {"m/1": TRUTH}, rate=500.0, max_requests=12,
            routes=("invocations",), resolve=resolve,
        )  # fmt: skip
        with traffic:
            traffic._thread.join(60)
            counts = traffic.stop()

    assert sorted(asked) == ["m/3", "m/9"]  # each unknown version looked up once
    assert counts.answered == {"m/3": 8}  # rows 0, 3, 4, 5, twice each
    assert counts.failed == 4
    text = "\n".join(counts.failures)
    assert "m/3 answered 0 for row 1, but that version predicts 1" in text
    assert "unknown version 'm/9' (model version m/9 does not exist)" in text
