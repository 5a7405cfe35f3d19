"""The deployment router in-process: apply, swap, reuse, retire, route, shadow, stats.

Real scikit-learn versions registered on breast_cancer (see ``test_serving_support``);
every answer is checked against the same estimator predicting in-process.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_serving_support import WAIT_S, Models, build_models, keel_home, run

from keel.deploy.router import DeploymentRouter
from keel.deploy.serving_pool import service_factory
from keel.deploy.traffic import Backend, Role, TrafficPlan
from keel.errors import InvalidInput, KeelError, NotFound
from keel.serving.runtime import Prepared


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return build_models(tmp_path_factory.mktemp("deploy-router-home"))


@pytest.fixture
def home(models: Models) -> Iterator[Path]:
    with keel_home(models.home) as path:
        yield path


class Counting:
    """A service factory that records every service it made and counts their closes."""

    def __init__(self) -> None:
        from keel.stores import current_stores

        self._make = service_factory(current_stores())
        self.made: list[tuple[str, Any]] = []
        self.closed: list[str] = []

    def __call__(self, model: str, version: int) -> Any:
        service = self._make(model, version)
        key = f"{model}/{version}"
        inner = service.close

        async def close() -> None:
            self.closed.append(key)
            await inner()

        service.close = close
        self.made.append((key, service))
        return service

    def keys(self) -> list[str]:
        return [key for key, _ in self.made]


def plan(
    name: str,
    *backends: tuple[str, float] | tuple[str, float, Role],
    revision: int = 1,
    shadow: str | None = None,
    sticky: str | None = None,
) -> TrafficPlan:
    def backend(key: str, weight: float, role: Role = Role.STABLE) -> Backend:
        model, _, version = key.partition("/")
        return Backend(model, int(version), weight, role)

    return TrafficPlan(
        name,
        revision,
        tuple(backend(*b) for b in backends),
        shadow=None if shadow is None else backend(shadow, 0, Role.SHADOW),
        sticky_key=sticky,
    )


def frame_of(models: Models, start: int, n: int = 1) -> Any:
    return models.X.iloc[start : start + n]


def by_frame(frame: Any) -> Any:
    return lambda runtime: runtime.prepare_frame(frame)


async def settle(router: DeploymentRouter) -> None:
    """Wait for mirrors and retirements the router started."""
    while router._tasks:
        await asyncio.gather(*list(router._tasks), return_exceptions=True)


def test_a_plan_serves_its_version_and_answers_like_the_estimator(
    home: Path, models: Models
) -> None:
    async def scenario() -> None:
        router = DeploymentRouter(factory=Counting())
        await router.apply(plan("churn-prod", ("cancer/1", 100)))
        assert router.deployments() == ["churn-prod"]
        assert router.ready("churn-prod")
        for start in (0, 7, 100):
            frame = frame_of(models, start, 3)
            answer = await router.call("churn-prod", by_frame(frame))
            assert answer.backend.key == "cancer/1"
            np.testing.assert_array_equal(
                answer.results["predict"], models.predict("cancer/1", frame)
            )
        stats = router.stats("churn-prod", 0)
        assert set(stats) == {"cancer/1"}
        assert (stats["cancer/1"].requests, stats["cancer/1"].errors) == (3, 0)
        assert stats["cancer/1"].p99_ms is not None
        assert stats["cancer/1"].p99_ms > 0
        meta = router.metadata("churn-prod")
        assert (meta.name, meta.versions) == ("churn-prod", ["1"])
        assert [t.name for t in meta.inputs] == list(models.X.columns)
        await router.close()

    run(scenario())


def test_blue_green_keeps_the_old_version_warm_and_rolls_back_without_loading(
    home: Path, models: Models
) -> None:
    async def scenario() -> None:
        factory = Counting()
        router = DeploymentRouter(factory=factory)
        await router.apply(plan("bg", ("cancer/1", 100)))
        blue = router.table("bg").routes["cancer/1"].slot
        await router.apply(
            plan("bg", ("cancer/1", 0, Role.STANDBY), ("cancer/2", 100, Role.STABLE), revision=2)
        )
        table = router.table("bg")
        assert table.routes["cancer/1"].slot is blue  # kept warm, not reloaded
        frame = frame_of(models, 10, 5)
        answer = await router.call("bg", by_frame(frame))
        assert answer.backend.key == "cancer/2"
        np.testing.assert_array_equal(answer.results["predict"], models.predict("cancer/2", frame))
        # rollback: the standby takes the traffic again, nothing is loaded
        await router.apply(plan("bg", ("cancer/1", 100), ("cancer/2", 0, Role.STANDBY), revision=3))
        assert factory.keys() == ["cancer/1", "cancer/2"]
        assert router.table("bg").routes["cancer/1"].slot is blue
        assert (await router.call("bg", by_frame(frame))).backend.key == "cancer/1"
        # a plan that no longer lists cancer/2 unloads it
        await router.apply(plan("bg", ("cancer/1", 100), revision=4))
        await settle(router)
        assert factory.closed == ["cancer/2"]
        assert set(router.table("bg").routes) == {"cancer/1"}
        await router.close()
        assert sorted(factory.closed) == ["cancer/1", "cancer/2"]

    run(scenario())


def test_applying_the_plan_already_serving_loads_nothing(home: Path) -> None:
    async def scenario() -> None:
        factory = Counting()
        router = DeploymentRouter(factory=factory)
        first = plan("same", ("cancer/1", 100))
        await router.apply(first)
        table = router.table("same")
        await router.apply(plan("same", ("cancer/1", 100)))
        assert router.table("same") is table
        assert factory.keys() == ["cancer/1"]
        await router.close()

    run(scenario())


def test_a_version_that_fails_to_warm_never_takes_traffic_and_the_old_plan_serves(
    home: Path, models: Models
) -> None:
    async def scenario() -> None:
        factory = Counting()
        router = DeploymentRouter(factory=factory)
        await router.apply(plan("safe", ("cancer/1", 100)))
        before = router.table("safe")
        bad = plan("safe", ("cancer/1", 50), ("broken/1", 50, Role.CANDIDATE), revision=2)
        with pytest.raises(KeelError) as caught:
            await router.apply(bad)
        assert "broken/1" in caught.value.message
        assert "'safe'" in caught.value.message
        assert router.table("safe") is before
        assert "broken/1" in factory.closed  # nothing of it stays open
        with pytest.raises(NotFound, match="cancer/99"):
            await router.apply(plan("safe", ("cancer/99", 100), revision=3))
        with pytest.raises(NotFound):
            await router.apply(plan("other", ("nosuchmodel/1", 100)))
        assert router.deployments() == ["safe"]
        for i in range(20):
            answer = await router.call("safe", by_frame(frame_of(models, i)))
            assert answer.backend.key == "cancer/1"
        await router.close()

    run(scenario())


def test_weights_split_traffic_and_a_sticky_key_always_meets_the_same_version(
    home: Path, models: Models
) -> None:
    async def scenario() -> None:
        router = DeploymentRouter(factory=Counting())
        split = plan("ab", ("cancer/1", 50), ("cancer/2", 50, Role.CANDIDATE))
        await router.apply(split)
        frame = frame_of(models, 3)
        counts = {"cancer/1": 0, "cancer/2": 0}
        for _ in range(400):
            counts[(await router.call("ab", by_frame(frame))).backend.key] += 1
        # binomial(400, 0.5) below 100 has probability ~1e-24
        assert min(counts.values()) > 100, counts
        sticky = plan(
            "ab", ("cancer/1", 50), ("cancer/2", 50, Role.CANDIDATE), revision=2, sticky="user"
        )
        await router.apply(sticky)
        for user in ("ada", "bob", "cy", "dee", "eve", "fay"):
            expected = sticky.choose_sticky(user).key
            for _ in range(5):
                answer = await router.call(
                    "ab",
                    by_frame(frame),
                    sticky_of=lambda key, u=user: u if key == "user" else None,
                )
                assert answer.backend.key == expected
        # a request without the key is routed at random, never refused
        answer = await router.call("ab", by_frame(frame), sticky_of=lambda key: None)
        assert answer.backend.key in counts
        await router.close()

    run(scenario())


def test_no_request_fails_while_plans_change_under_concurrent_load(
    home: Path, models: Models
) -> None:
    async def scenario() -> dict[str, int]:
        router = DeploymentRouter(factory=Counting())
        await router.apply(plan("live", ("cancer/1", 100)))
        answered: dict[str, int] = {}
        failures: list[BaseException] = []
        stop = asyncio.Event()

        async def client(i: int) -> None:
            sent = 0
            while not stop.is_set() and sent < 2_000:
                frame = frame_of(models, (i * 31 + sent) % 500)
                try:
                    answer = await router.call("live", by_frame(frame))
                except BaseException as exc:  # counted: the assertion is that none happen
                    failures.append(exc)
                else:
                    key = answer.backend.key
                    answered[key] = answered.get(key, 0) + 1
                    expected = models.predict(key, frame)
                    if not np.array_equal(answer.results["predict"], expected):
                        failures.append(AssertionError(f"{key} answered wrongly"))
                sent += 1

        async def served_under_the_new_plan() -> None:
            # 8 clients hold at most 8 requests routed before the swap: 3 x 8 more answers
            # means some were routed by the new plan (a fixed sleep may see none under load)
            target = sum(answered.values()) + 3 * 8
            deadline = time.monotonic() + WAIT_S
            while sum(answered.values()) < target and not failures:
                assert time.monotonic() < deadline, f"no traffic served; answered {answered}"
                await asyncio.sleep(0.005)

        clients = [asyncio.create_task(client(i)) for i in range(8)]
        plans = [
            plan("live", ("cancer/1", 0, Role.STANDBY), ("cancer/2", 100), revision=2),
            plan("live", ("cancer/1", 100), ("cancer/2", 0, Role.STANDBY), revision=3),
            plan("live", ("cancer/1", 75), ("cancer/3", 25, Role.CANDIDATE), revision=4),
            plan("live", ("cancer/3", 100), revision=5),
        ]
        await served_under_the_new_plan()
        for p in plans:
            await router.apply(p)
            await served_under_the_new_plan()
        await router.reload("live")  # a server-side reload of the serving version
        await served_under_the_new_plan()
        stop.set()
        await asyncio.gather(*clients)
        await router.close()
        assert failures == []
        return answered

    answered = run(scenario())
    assert set(answered) == {"cancer/1", "cancer/2", "cancer/3"}


def test_a_reload_replaces_the_loaded_service_and_closes_the_old_one_when_idle(
    home: Path, models: Models
) -> None:
    async def scenario() -> None:
        factory = Counting()
        router = DeploymentRouter(factory=factory)
        first = plan("re", ("cancer/1", 100))
        await router.apply(first)
        old = router.table("re").routes["cancer/1"]
        old.slot.enter()  # a request still inside the old service
        await router.apply(first, reload=["cancer/1"])
        new = router.table("re").routes["cancer/1"]
        assert new.slot is not old.slot
        assert new.window is old.window
        await asyncio.sleep(0.05)
        assert factory.closed == []  # it waits for the request inside
        old.slot.leave()
        await settle(router)
        assert factory.closed == ["cancer/1"]
        answer = await router.call("re", by_frame(frame_of(models, 1)))
        assert answer.backend.key == "cancer/1"
        with pytest.raises(InvalidInput, match="cancer/2"):
            await router.apply(first, reload=["cancer/2"])
        for bad in ("cancer/1", 7, [1]):
            with pytest.raises(InvalidInput, match="reload"):
                await router.apply(first, reload=bad)  # type: ignore[arg-type]
        await router.close()

    run(scenario())


def test_a_shadow_sees_every_request_never_answers_and_records_agreement(
    home: Path, models: Models
) -> None:
    async def scenario() -> None:
        n = 120
        # room for every mirror at once: under a loaded CI machine the shadow can fall behind
        # the sequential calls, and shedding beyond the bound is the next test's subject
        router = DeploymentRouter(factory=Counting(), shadow_concurrency=n)
        await router.apply(plan("sh", ("cancer/1", 100), shadow="cancer/3"))
        for i in range(n):
            answer = await router.call("sh", by_frame(frame_of(models, i)))
            assert answer.backend.key == "cancer/1"
        await settle(router)
        stats = router.stats("sh", 0)
        shadow = stats["cancer/3"]
        rows = models.X.iloc[:n]
        agree = models.predict("cancer/1", rows) == models.predict("cancer/3", rows)
        assert shadow.requests == n
        assert shadow.errors == 0
        assert shadow.extra["compared"] == n
        assert math.isclose(shadow.extra["agreement"], agree.mean())
        assert 0 < agree.mean() < 1  # the stump disagrees sometimes: the figure means something
        assert stats["cancer/1"].requests == n
        assert "agreement" not in stats["cancer/1"].extra
        await router.close()

    run(scenario())


def test_mirrors_beyond_the_bound_are_dropped_and_counted_never_awaited(
    home: Path, models: Models
) -> None:
    async def scenario() -> None:
        router = DeploymentRouter(factory=Counting(), shadow_concurrency=1)
        await router.apply(plan("shed", ("cancer/1", 100), shadow="cancer/2"))
        frames = [frame_of(models, i) for i in range(40)]
        answers = await asyncio.gather(*(router.call("shed", by_frame(f)) for f in frames))
        assert len(answers) == 40
        await settle(router)
        shadow = router.stats("shed", 0)["cancer/2"]
        assert shadow.extra["dropped"] >= 1
        assert shadow.extra["compared"] + shadow.extra["dropped"] == 40
        await router.close()

    run(scenario())


def test_client_errors_are_rejections_and_model_failures_are_errors(
    home: Path, models: Models
) -> None:
    def refused(runtime: Any) -> Prepared:
        raise InvalidInput("no such column")

    def breaks_the_model(runtime: Any) -> Prepared:
        # passes "the checks" but holds columns the model never saw: it raises inside predict
        return Prepared(rows=1, outputs=["predict"], columns={"nonsense": np.zeros(1)})

    async def scenario() -> None:
        router = DeploymentRouter(factory=Counting())
        await router.apply(plan("err", ("cancer/1", 100)))
        with pytest.raises(InvalidInput, match="no such column"):
            await router.call("err", refused)
        with pytest.raises(KeelError):
            await router.call("err", breaks_the_model)
        await router.call("err", by_frame(frame_of(models, 0)))
        stats = router.stats("err", 0)["cancer/1"]
        assert (stats.requests, stats.errors, stats.extra["rejected"]) == (3, 1, 1)
        assert math.isclose(stats.error_rate, 1 / 3)
        assert router.stats("err", 4_000_000_000).get("cancer/1").requests == 0  # the future
        await router.close()

    run(scenario())


def test_wrong_empty_and_hostile_arguments_are_clear_errors(home: Path, models: Models) -> None:
    async def scenario() -> None:
        router = DeploymentRouter(factory=Counting())
        for bad in (None, "churn", {"deployment": "x"}):
            with pytest.raises(InvalidInput, match="TrafficPlan"):
                await router.apply(bad)  # type: ignore[arg-type]
        hostile = "x" * 100_000
        with pytest.raises(NotFound) as caught:
            await router.call(hostile, by_frame(frame_of(models, 0)))
        assert len(caught.value.message) < 300
        await router.apply(plan("ok", ("cancer/1", 100)))
        for prepare, sticky_of in ((None, None), ("x", None), (by_frame(frame_of(models, 0)), 5)):
            with pytest.raises(InvalidInput, match="prepare"):
                await router.call("ok", prepare, sticky_of=sticky_of)  # type: ignore[arg-type]
        for call in (router.table, router.ready, router.metadata):
            with pytest.raises(NotFound):
                call("nope")
        with pytest.raises(NotFound):
            await router.reload("nope")
        assert router.stats("nope", 0) == {}
        await router.remove("nope")  # not served: a no-op, as the control plane expects
        for since in (math.nan, math.inf, "yesterday", None, True):
            await router.apply(plan("ok", ("cancer/1", 100)))
            with pytest.raises(InvalidInput, match="since"):
                router.stats("ok", since)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            router.stats(42, 0)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            DeploymentRouter(shadow_concurrency=0)
        await router.remove("ok")
        with pytest.raises(NotFound):
            router.table("ok")
        await router.close()
        with pytest.raises(KeelError, match="shut down"):
            await router.apply(plan("ok", ("cancer/1", 100)))

    run(scenario())


def test_a_tensor_signature_version_is_smoke_tested_on_its_array_example(home: Path) -> None:
    from sklearn.datasets import load_diabetes

    from keel.serving.protocol import InferenceRequest, Tensor

    X, _ = load_diabetes(return_X_y=True)

    async def scenario() -> None:
        router = DeploymentRouter()  # the SDK's current stores
        await router.apply(plan("dia", ("diabetes/1", 100)))
        rows = X[:4]
        request = InferenceRequest(inputs=[Tensor("input", "FP64", list(rows.shape), rows)])
        answer = await router.call("dia", lambda runtime: runtime.prepare(request))
        assert answer.results["predict"].shape == (4,)
        await router.close()

    run(scenario())


def test_prometheus_series_follow_the_backends_of_the_plan(home: Path, models: Models) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, version: str, **extra: str) -> float | None:
        labels = {"deployment": "prom", "model": "cancer", "version": version, **extra}
        return REGISTRY.get_sample_value(name, labels)

    async def scenario() -> None:
        router = DeploymentRouter(factory=Counting())
        await router.apply(plan("prom", ("cancer/1", 80), ("cancer/2", 20, Role.CANDIDATE)))
        assert value("keel_deployment_traffic_weight", "1", role="stable") == 80
        assert value("keel_deployment_traffic_weight", "2", role="candidate") == 20
        for i in range(30):
            await router.call("prom", by_frame(frame_of(models, i)))
        total = (value("keel_deployment_requests_total", "1") or 0) + (
            value("keel_deployment_requests_total", "2") or 0
        )
        assert total == 30
        count = (value("keel_deployment_request_seconds_count", "1") or 0) + (
            value("keel_deployment_request_seconds_count", "2") or 0
        )
        assert count == 30
        assert (value("keel_deployment_batch_rows_count", "1") or 0) >= 1
        assert value("keel_deployment_queue_depth", "1") == 0
        await router.apply(plan("prom", ("cancer/2", 100), revision=2))
        assert value("keel_deployment_requests_total", "1") is None  # gone with its backend
        assert value("keel_deployment_traffic_weight", "2", role="stable") == 100
        assert value("keel_deployment_traffic_weight", "2", role="candidate") is None
        await router.close()
        assert value("keel_deployment_traffic_weight", "2", role="stable") is None

    run(scenario())


def test_a_full_queue_is_overloaded_and_counted_as_the_versions_error(
    home: Path, models: Models
) -> None:
    from keel.errors import Overloaded
    from keel.stores import current_stores

    async def scenario() -> None:
        router = DeploymentRouter(factory=service_factory(current_stores(), max_queue=1))
        await router.apply(plan("full", ("cancer/1", 100)))
        frames = [frame_of(models, i) for i in range(60)]
        results = await asyncio.gather(
            *(router.call("full", by_frame(f)) for f in frames), return_exceptions=True
        )
        refused = [r for r in results if isinstance(r, BaseException)]
        assert refused, "60 concurrent requests on a queue of 1: some must be refused"
        assert all(isinstance(r, Overloaded) for r in refused)
        stats = router.stats("full", 0)["cancer/1"]
        assert (stats.requests, stats.errors) == (60, len(refused))
        await router.close()

    run(scenario())
