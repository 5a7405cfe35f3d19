"""Zero downtime (issue 4, point 5): a live ``keel server`` on 127.0.0.1 under a bounded
concurrent load while a blue-green switch, every canary step, a rollback and a server-side
model reload happen. Every request must succeed, every answer must be the answering
version's own prediction, and traffic must actually reach each new version.

Traffic changes and the reload go through the control plane's REST API
(``/api/v1/deployments``); the reload is proven by the answering service objects of the
server's router being new ones.
The load is 8 concurrent keep-alive clients, at most ``MAX_REQUESTS`` requests in all.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from test_serving_support import WAIT_S, Models, build_models, keel_home, live_server

CLIENTS = 8
MAX_REQUESTS = 40_000
ROWS = 50
DEP = "zd"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return build_models(tmp_path_factory.mktemp("deploy-zero-downtime-home"))


class Load:
    """8 clients sending 1-row OIP requests in a thread; failures and answers counted."""

    def __init__(self, url: str, models: Models) -> None:
        self.url = f"{url}/v2/models/{DEP}/infer"
        rows = models.X.iloc[:ROWS]
        self.bodies = [
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 30],
                         "data": rows.iloc[i].tolist()}],
             "outputs": [{"name": "predict"}]}
            for i in range(ROWS)
        ]  # fmt: skip
        keys = [k for k in models.estimators if k.startswith("cancer/")]
        self.expected = {k: models.predict(k, rows).tolist() for k in keys}
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(limits=limits, timeout=WAIT_S) as client:
            await asyncio.gather(*(self._client(client, i) for i in range(CLIENTS)))

    async def _client(self, client: httpx.AsyncClient, start: int) -> None:
        i = start
        while not self._stop.is_set():
            with self._lock:
                if self.sent >= MAX_REQUESTS:
                    return
                self.sent += 1
            row = i % ROWS
            i += CLIENTS
            try:
                r = await client.post(self.url, json=self.bodies[row])
            except httpx.HTTPError as exc:
                self._fail(f"{type(exc).__name__}: {exc}")
                continue
            if r.status_code != 200:
                self._fail(f"{r.status_code}: {r.text[:200]}")
                continue
            backend = r.headers["keel-backend"]
            got = r.json()["outputs"][0]["data"]
            if got != [self.expected[backend][row]]:
                self._fail(f"{backend} answered {got} for row {row}")
                continue
            with self._lock:
                self.answers[backend] += 1

    def _fail(self, what: str) -> None:
        with self._lock:
            self.failures.append(what)

    def count(self, key: str) -> int:
        with self._lock:
            return self.answers[key]

    def wait(self, what: str, ok: Callable[[], bool]) -> None:
        """Wait (bounded) until ``ok()``; fail naming ``what`` otherwise."""
        deadline = time.monotonic() + WAIT_S * 2
        while not ok():
            if time.monotonic() > deadline or not self._thread.is_alive():
                pytest.fail(f"timed out waiting for {what}; answers {dict(self.answers)}")
            time.sleep(0.02)

    def more(self, key: str, n: int = 40) -> None:
        """Wait until ``key`` has answered ``n`` more requests than now."""
        target = self.count(key) + n
        self.wait(f"{n} more answers from {key}", lambda: self.count(key) >= target)


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def _weights(doc: dict[str, Any]) -> dict[str, float]:
    return {f"{b['model']}/{b['version']}": b["weight"] for b in doc["plan"]["backends"]}


@pytest.fixture
def server(models: Models) -> Iterator[tuple[str, asyncio.AbstractEventLoop, Any]]:
    from keel.config import load_settings
    from keel.server import create_app

    with keel_home(models.home):
        app = create_app(settings=load_settings(models.home))
        with live_server(app) as (url, loop):
            yield url, loop, app


@pytest.mark.slow
def test_no_request_fails_through_blue_green_canary_rollback_and_reload(
    server: tuple[str, asyncio.AbstractEventLoop, Any], models: Models
) -> None:
    url, _loop, app = server
    api = httpx.Client(base_url=f"{url}/api/v1", timeout=WAIT_S)
    _ok(api.post("/deployments", json={"name": DEP, "model": "models:/cancer/1"}), 201)
    with Load(url, models) as load:
        load.more("cancer/1")

        # blue-green: cancer/2 loads, warms and takes all traffic; cancer/1 stays warm
        blue_green = {"model": "models:/cancer/2", "strategy": "blue-green"}
        doc = _ok(api.post(f"/deployments/{DEP}/rollouts", json=blue_green))
        assert _weights(doc)["cancer/2"] == 100
        load.more("cancer/2")

        # rollback to the warm cancer/1
        doc = _ok(api.post(f"/deployments/{DEP}/rollback"))
        assert _weights(doc)["cancer/1"] == 100
        load.more("cancer/1")

        # canary of cancer/3 through 5, 25, 50 and 100 %, each step gated on live stats
        config = {"steps": [5, 25, 50, 100], "interval_s": 0.3, "min_requests": 3,
                  "max_p99_ratio": 1e6, "p99_slack_ms": 1e6, "max_error_rate": 0.0,
                  "max_wait": 200}  # fmt: skip
        canary = {"model": "models:/cancer/3", "strategy": "canary", "config": config}
        _ok(api.post(f"/deployments/{DEP}/rollouts", json=canary))

        def promoted() -> bool:
            rollout = _ok(api.get(f"/deployments/{DEP}"))["rollout"]
            if rollout["status"] not in ("running", "promoted"):
                pytest.fail(f"the canary ended {rollout['status']}: {rollout.get('reason')}")
            return rollout["status"] == "promoted"

        load.wait("the canary's promotion", promoted)
        load.more("cancer/3")

        # a server-side reload through the API: every loaded service is replaced under load
        routes = app.state.deployment_router.table(DEP).routes
        before = {key: route.slot for key, route in routes.items()}
        doc = _ok(api.post(f"/deployments/{DEP}/reload"))
        assert doc["reloaded"] == sorted(before)
        after = app.state.deployment_router.table(DEP).routes
        assert "cancer/3" in before
        assert all(after[key].slot is not slot for key, slot in before.items())
        load.more("cancer/3")
    history = _ok(api.get(f"/deployments/{DEP}/history", params={"limit": 100}))
    api.close()

    assert load.failures == [], load.failures[:5]
    assert load.sent <= MAX_REQUESTS
    assert min(load.answers[k] for k in ("cancer/1", "cancer/2", "cancer/3")) >= 40
    entries = history["history"]
    canary = [w for w in (_weights(e).get("cancer/3") for e in entries) if w is not None and w > 0]
    for step in (5, 25, 50, 100):
        assert step in canary, canary
