"""The demo's live traffic: real HTTP requests to a deployment, bounded, paced and checked.

:class:`Traffic` sends the held-out rows one at a time from a few concurrent keep-alive
clients in a background thread, alternating the two routes a deployment serves: the Open
Inference Protocol (``/v2/models/<name>/infer``, one 2-D tensor) and MLflow's scoring
format (``/deployments/<name>/invocations``, ``dataframe_split``). Every answer names the
version that gave it (the ``Keel-Backend`` header) and is checked against that version's
in-process prediction of the same row, so a count per version is a count of right
answers, not of responses.

The load is bounded three ways: a pace (``rate`` requests per second in all, so a demo
on a busy laptop does not become a benchmark), a request budget and a time budget; it
also stops when the demo stops it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Traffic", "TrafficCounts"]

BACKEND_HEADER = "keel-backend"
REQUEST_ID_HEADER = "keel-request-id"
ROUTES = ("oip", "invocations")
MAX_PENDING = 10_000  # answers from a version not yet expected, kept to check later
MAX_FAILURES_KEPT = 20


@dataclass(frozen=True)
class TrafficCounts:
    """What the traffic saw: right answers, their labels' accuracy, and what went wrong."""

    sent: int
    answered: dict[str, int]  # right answers by backend key (model/version)
    correct: dict[str, int]  # of those, how many matched the row's true label
    by_route: dict[str, int]  # answered requests by route ("oip", "invocations")
    failed: int = 0  # HTTP errors, unreadable or wrong answers
    failures: list[str] = field(default_factory=list)  # the first MAX_FAILURES_KEPT of them

    def accuracy(self, backend: str) -> float | None:
        """Return the share of ``backend``'s answers that were the true label."""
        n = self.answered.get(backend, 0)
        return self.correct.get(backend, 0) / n if n else None


class Traffic:
    """Paced requests to one deployment in a background thread (see the module doc).

    ``rows`` and ``labels`` are the held-out data; ``expected`` maps each backend key the
    deployment may route to onto its in-process predictions of ``rows``. ``resolve``, when
    given, returns the predictions of a backend key ``expected`` lacks: a rollback may go
    to any version in the deployment's history, so answers from a version nobody named are
    judged against it at ``stop`` instead of being failures.
    """

    def __init__(
        self,
        url: str,
        deployment: str,
        rows: pd.DataFrame,
        labels: np.ndarray,
        expected: dict[str, np.ndarray],
        *,
        concurrency: int = 4,
        rate: float = 40.0,
        max_requests: int = 2000,
        max_seconds: float = 120.0,
        timeout: float = 30.0,
        routes: tuple[str, ...] = ROUTES,
        resolve: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        if not routes or any(r not in ROUTES for r in routes):
            raise ValueError(f"routes must be some of {ROUTES}, not {routes!r}")
        self.url = url
        self.deployment = deployment
        self._columns = [str(c) for c in rows.columns]
        self._values = rows.to_numpy(dtype=float).tolist()
        self._labels = [int(v) for v in labels]
        self._expected = {k: [int(v) for v in p] for k, p in expected.items()}
        self._concurrency = concurrency
        self._gap = 1.0 / rate
        self._max_requests = max_requests
        self._max_seconds = max_seconds
        self._timeout = timeout
        self._routes_used = routes
        self._resolve = resolve
        # right answers by backend: (request id, the row's true label), for feedback
        self._ids: dict[str, list[tuple[str, int]]] = {}
        self._pending: list[tuple[int, int, str, str, int, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self._next_at = 0.0
        self._answered: Counter[str] = Counter()
        self._correct: Counter[str] = Counter()
        self._routes: Counter[str] = Counter()
        self._failures: list[str] = []
        self._failed = 0
        self._thread = threading.Thread(target=self._main, name="keel-demo-traffic", daemon=True)

    # -- control -----------------------------------------------------------------------
    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> TrafficCounts:
        """Stop sending, wait for the requests in flight, and return the counts."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._timeout + 5)
        with self._lock:
            pending, self._pending = self._pending, []
        why = self._learn({p[3] for p in pending})
        for number, row, route, backend, answer, request_id in pending:
            if backend in self._expected:
                self._judge(number, row, route, backend, answer, request_id)
            else:
                self._fail(
                    f"request {number} ({route}) was answered by unknown version {backend!r}"
                    + why.get(backend, "")
                )
        return self.counts()

    def _learn(self, backends: set[str]) -> dict[str, str]:
        """Add the predictions ``resolve`` gives of each backend not expected yet; return
        why it could not, by backend."""
        why: dict[str, str] = {}
        if self._resolve is None:
            return why
        for backend in sorted(backends - set(self._expected)):
            try:
                predictions = self._resolve(backend)
            except KeelError as exc:  # e.g. NotFound: the header named no registered version
                why[backend] = f" ({exc})"
                continue
            with self._lock:
                self._expected[backend] = [int(v) for v in predictions]
        return why

    @property
    def running(self) -> bool:
        """True while requests are being sent (budgets not spent, not stopped)."""
        return self._thread.is_alive()

    def counts(self) -> TrafficCounts:
        """Return the counts so far (a consistent snapshot)."""
        with self._lock:
            return TrafficCounts(
                sent=self._sent,
                answered=dict(self._answered),
                correct=dict(self._correct),
                by_route=dict(self._routes),
                failed=self._failed,
                failures=list(self._failures),
            )

    def expect(self, backend: str, predictions: np.ndarray) -> None:
        """Add a version the deployment may route to (its predictions of the rows), and
        check the answers it already gave, which were held until now."""
        with self._lock:
            self._expected[backend] = [int(v) for v in predictions]
            pending, self._pending = self._pending, []
        for number, row, route, got, answer, request_id in pending:
            self._judge(number, row, route, got, answer, request_id)

    def labelled(self, backend: str) -> list[tuple[str, int]]:
        """Return ``(request id, true label)`` of every right answer ``backend`` gave."""
        with self._lock:
            return list(self._ids.get(backend, []))

    def answered(self, backend: str) -> int:
        """Return how many right answers ``backend`` gave so far."""
        with self._lock:
            return self._answered[backend]

    def wait_for(self, backend: str, n: int, timeout: float) -> bool:
        """Wait until ``backend`` gave ``n`` more right answers (False if it did not in time)."""
        target = self.answered(backend) + n
        deadline = time.monotonic() + timeout
        while self.answered(backend) < target:
            if not self.running or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    # -- the load ----------------------------------------------------------------------
    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        import httpx

        limits = httpx.Limits(
            max_connections=self._concurrency, max_keepalive_connections=self._concurrency
        )
        self._next_at = time.monotonic()
        deadline = self._next_at + self._max_seconds
        async with httpx.AsyncClient(
            base_url=self.url, limits=limits, timeout=self._timeout
        ) as client:
            await asyncio.gather(
                *(self._client(client, deadline) for _ in range(self._concurrency))
            )

    def _take(self, deadline: float) -> tuple[int, float] | None:
        """Reserve the next request: its number and when to send it (None: stop)."""
        with self._lock:
            if self._stop.is_set() or self._sent >= self._max_requests:
                return None
            at = max(self._next_at, time.monotonic() - self._gap)  # no burst after a stall
            if at > deadline:
                return None
            self._next_at = at + self._gap
            number = self._sent
            self._sent += 1
            return number, at

    async def _client(self, client: Any, deadline: float) -> None:
        while (taken := self._take(deadline)) is not None:
            number, at = taken
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            row = number % len(self._values)
            route = self._routes_used[number % len(self._routes_used)]
            try:
                if route == "oip":
                    r = await client.post(
                        f"/v2/models/{self.deployment}/infer", json=self._oip(number, row)
                    )
                else:
                    r = await client.post(
                        f"/deployments/{self.deployment}/invocations", json=self._mlflow(row)
                    )
            except Exception as exc:  # noqa: BLE001 - every failure is counted, none is fatal
                self._fail(f"request {number} ({route}): {type(exc).__name__}: {exc}")
                continue
            self._check(number, row, route, r)

    def _oip(self, number: int, row: int) -> dict[str, Any]:
        values = self._values[row]
        return {
            "id": f"demo-{number}",
            "inputs": [
                {"name": "input", "datatype": "FP64", "shape": [1, len(values)], "data": values}
            ],
            "outputs": [{"name": "predict"}],
        }

    def _mlflow(self, row: int) -> dict[str, Any]:
        return {"dataframe_split": {"columns": self._columns, "data": [self._values[row]]}}

    def _check(self, number: int, row: int, route: str, r: Any) -> None:
        if r.status_code != 200:
            self._fail(f"request {number} ({route}): HTTP {r.status_code} {r.text[:160]}")
            return
        backend = r.headers.get(BACKEND_HEADER, "")
        try:
            doc = r.json()
            got = doc["outputs"][0]["data"] if route == "oip" else doc["predictions"]
            answer = int(got[0])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            self._fail(f"request {number} ({route}): unreadable answer ({exc}): {r.text[:160]}")
            return
        self._judge(number, row, route, backend, answer, r.headers.get(REQUEST_ID_HEADER, ""))

    def _judge(
        self, number: int, row: int, route: str, backend: str, answer: int, request_id: str
    ) -> None:
        with self._lock:
            expected = self._expected.get(backend)
            if expected is None and len(self._pending) < MAX_PENDING:
                # A version the demo has not named yet (a canary its pipeline just
                # started): judged once the demo knows what that version predicts.
                self._pending.append((number, row, route, backend, answer, request_id))
                return
        if expected is None:
            self._fail(f"request {number} ({route}) was answered by unknown version {backend!r}")
            return
        if answer != expected[row]:
            self._fail(
                f"request {number} ({route}): {backend} answered {answer} for row {row}, "
                f"but that version predicts {expected[row]}"
            )
            return
        with self._lock:
            self._answered[backend] += 1
            self._correct[backend] += answer == self._labels[row]
            self._routes[route] += 1
            self._ids.setdefault(backend, []).append((request_id, self._labels[row]))

    def _fail(self, what: str) -> None:
        with self._lock:
            self._failed += 1
            if len(self._failures) < MAX_FAILURES_KEPT:
                self._failures.append(what)
