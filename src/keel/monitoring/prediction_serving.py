"""The serving side of the prediction log: request ids, and one call per served request.

``keel serve`` (REST and gRPC) and ``keel server``'s deployments call :func:`log_served`
with what the request went through (REST once the response is sent, gRPC before it);
it picks the inputs to keep (sampling) and queues one record on the
:class:`~keel.monitoring.prediction_log.PredictionLogger`
(:meth:`~keel.monitoring.prediction_intake.RequestBuffer.submit`): no copy, no I/O. A
request's id is the caller's (OIP ``id``, else the ``Keel-Request-Id`` header) when it is
a short printable string, else a new one.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from keel.monitoring.prediction_log import PredictionLogger
    from keel.serving.runtime import ModelRuntime, Prepared

__all__ = [
    "MAX_REQUEST_ID",
    "deployment_name",
    "inputs_of",
    "log_served",
    "new_request_id",
    "now_ms",
    "request_id_of",
]

MAX_REQUEST_ID = 256
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@lru_cache(maxsize=256)
def deployment_name(model: str | None) -> str:
    """The deployment ``keel serve`` logs a model under: its name, made a valid deployment
    name (a registered model's name may hold spaces or '=', a path segment may not)."""
    name = _NOT_NAME.sub("-", model or "").strip("-._")[:128]
    return name or "unnamed"


class _RequestIds:
    """Random 128-bit ids drawn from the OS 256 at a time: one ``os.urandom`` call (a
    system call, several microseconds under load) per 256 requests instead of one each,
    as random as ``uuid4``. A forked child starts a fresh pool, so it never repeats its
    parent's ids."""

    BATCH = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: list[str] = []

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._pool = []

    def next(self) -> str:
        with self._lock:
            if not self._pool:
                text = os.urandom(16 * self.BATCH).hex()
                self._pool = [text[i : i + 32] for i in range(0, len(text), 32)]
            return self._pool.pop()


_IDS = _RequestIds()
os.register_at_fork(after_in_child=_IDS.reset)


def new_request_id() -> str:
    """A fresh request id (32 random hex digits) for a request that brought none."""
    return _IDS.next()


def request_id_of(given: object) -> str:
    """The id a request is logged and answered under: the caller's if usable, else new."""
    if isinstance(given, str) and 0 < len(given) <= MAX_REQUEST_ID and given.isprintable():
        return given
    return new_request_id()


def inputs_of(runtime: ModelRuntime, prepared: Prepared) -> tuple[Any, Sequence[str] | None]:
    """The inputs of a checked request as :meth:`PredictionLogger.record` takes them (no
    copy here: a 2-D block stays one array, with the runtime's one tuple of names)."""
    if prepared.block is not None:
        return prepared.block, runtime.column_names
    if prepared.array is not None:
        return {"input": prepared.array}, None
    return prepared.columns, None


def log_served(
    logger: PredictionLogger,
    deployment: str,
    request_id: str,
    time_ms: int,
    latency_ms: float,
    status: int,
    error: str | None = None,
    model: str | None = None,
    version: str | None = None,
    runtime: ModelRuntime | None = None,
    prepared: Prepared | None = None,
    results: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Queue one served request for the log (:meth:`PredictionLogger.submit`) from what
    the serving path has at hand: a failed one with its status and error; its runtime, if
    known, names the model. The arrays are the request's own and are not changed later.

    ``keel serve`` passes the arguments by position, once per request: keywords would
    cost a dict and its unpacking on every request."""
    if runtime is not None:
        model = runtime.name if model is None else model
        version = runtime.version if version is None else version
    inputs: Any = None
    names: Sequence[str] | None = None
    rows = 1
    sampled = logger.sample()
    if status == 200 and prepared is not None and results is not None:
        rows = prepared.rows
        if sampled and runtime is not None:
            inputs, names = inputs_of(runtime, prepared)
    else:
        results = None
    if error is not None and len(error) > 1000:
        error = error[:997] + "..."
    logger.submit(
        deployment, model, version, request_id, time_ms, latency_ms, status, rows, error,
        inputs, names, results, sampled,
    )  # fmt: skip


def now_ms() -> int:
    """Milliseconds since the epoch, now (a request's ``time_ms``)."""
    return time.time_ns() // 1_000_000
