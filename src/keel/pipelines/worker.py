"""What runs one step attempt: load its inputs, call it with logs captured, store its output.

The same :func:`execute` runs in a worker process (``local`` executor) or in this process
(``inline``). A worker reads its inputs from the blob store by digest and writes its output
there; only digests, logs and errors travel back, never the data itself.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.pipelines.materialize import OutputRef, load_output, store_output

if TYPE_CHECKING:
    from keel.pipelines.steps import Step
    from keel.store.artifacts import BlobStore
    from keel.tracking.run_writes import RunWrite

__all__ = ["StepResult", "StepTask", "StoreSpec", "execute", "worker_main"]

MAX_LOG_CHARS = 1 << 20  # the last MiB of what a step prints is kept


@dataclass(frozen=True)
class StoreSpec:
    """Where a worker finds the artifact store (a server's, when tracking is over HTTP)."""

    tracking_uri: str
    artifact_uri: str
    home: str
    token: str = field(default="", repr=False)

    def open(self) -> BlobStore:
        """Return the blob store this spec names (opened once per process)."""
        opened = _OPENED.get(self)
        if opened is not None:
            return opened[0]
        if self.tracking_uri.startswith(("http://", "https://")):
            from keel.config import load_settings
            from keel.stores import open_stores

            settings = load_settings(
                Path(self.home), tracking_uri=self.tracking_uri, token=self.token
            )
            # Keep every store: the REST stores share one HTTP client, closed with them.
            stores = open_stores(settings)
            _OPENED[self] = (stores.artifacts, stores)
            return stores.artifacts
        from keel.store.artifacts import open_artifact_store

        store = open_artifact_store(self.artifact_uri)
        _OPENED[self] = (store, None)
        return store

    def activate(self) -> None:
        """Point this process's ``keel.*`` calls at the spec's stores, if they are elsewhere.

        A spawned worker inherits the environment, not a ``keel.set_tracking_uri`` made
        in the parent; a step that logs (``keel.log_metric``, ``keel.log_model``) must
        write where its run is.
        """
        from keel.config import reset_settings
        from keel.stores import current_stores

        if current_stores().tracking_uri == self.tracking_uri:
            return
        os.environ.update(
            KEEL_HOME=self.home,
            KEEL_TRACKING_URI=self.tracking_uri,
            KEEL_ARTIFACT_URI=self.artifact_uri,
        )
        if self.token:
            os.environ["KEEL_TOKEN"] = self.token
        reset_settings()  # the stores are reopened with the new settings


# spec -> (its blob store, what must stay alive with it: the REST stores' shared client)
_OPENED: dict[StoreSpec, tuple[BlobStore, Any]] = {}


@dataclass(frozen=True)
class StepTask:
    """One attempt of one node: the step, its parameters and its upstream outputs."""

    node_id: str
    step: Step
    params: dict[str, Any]
    inputs: dict[str, OutputRef | tuple[OutputRef, ...]]
    store: StoreSpec
    attempt: int = 1
    run_id: str | None = None  # the step run: active while the step runs (see execute)
    # What creates the step run, should the step ask for it before the engine's buffered
    # records reach the store (see keel.pipelines.recorder).
    run_start: RunWrite | None = None
    # Write the output without fsync, for the engine to make durable in a group before it
    # records it (keel.pipelines.durable): only where the engine sees the worker's files.
    defer_sync: bool = False


@dataclass(frozen=True)
class StepResult:
    """How an attempt ended: the stored output, or the error; its logs and timings (ms)."""

    node_id: str
    output: OutputRef | None
    error: str | None
    traceback: str | None
    logs: str
    started: int
    ended: int
    unsynced: tuple[str, ...] = ()  # blobs written without fsync (see StepTask.defer_sync)


class _Tail(io.StringIO):
    """A text buffer that stops growing past ``MAX_LOG_CHARS`` (keeping the newest text)."""

    def write(self, s: str) -> int:
        n = super().write(s)
        if self.tell() > 2 * MAX_LOG_CHARS:
            kept = self.getvalue()[-MAX_LOG_CHARS:]
            self.seek(0)
            self.truncate()
            super().write(kept)
        return n

    def text(self) -> str:
        value = self.getvalue()
        return value if len(value) <= MAX_LOG_CHARS else value[-MAX_LOG_CHARS:]


def _ms() -> int:
    return time.time_ns() // 1_000_000


def execute(task: StepTask, blobs: BlobStore | None = None) -> StepResult:
    """Return the result of running ``task`` once (never raises for a step's own error)."""
    from keel.pipelines.errors import StepFailed

    started = _ms()
    logs = _Tail()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    try:
        store = blobs if blobs is not None else task.store.open()
        kwargs = dict(task.params)
        for arg, ref in task.inputs.items():
            kwargs[arg] = (
                [load_output(r, store) for r in ref]
                if isinstance(ref, tuple)
                else load_output(ref, store)
            )
        root.addHandler(handler)
        try:
            with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs):
                with _step_run(task):
                    value = task.step.fn(**kwargs)
        finally:
            root.removeHandler(handler)
        unsynced: list[str] | None = [] if task.defer_sync else None
        output = store_output(value, store, task.node_id, unsynced=unsynced)
    except StepFailed as exc:
        return StepResult(task.node_id, None, exc.message, _tb(exc), logs.text(), started, _ms())
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a step's error is data
        message = f"{type(exc).__name__}: {exc}"
        return StepResult(task.node_id, None, message, _tb(exc), logs.text(), started, _ms())
    written = tuple(unsynced or ())
    return StepResult(task.node_id, output, None, None, logs.text(), started, _ms(), written)


@contextlib.contextmanager
def _step_run(task: StepTask) -> Iterator[None]:
    # The step's own run is the active run while it runs: what it logs, and any model it
    # registers, is recorded on (and traced to) its step run.
    if task.run_id is None:
        yield
        return
    from keel.tracking.fluent import pending_run

    with pending_run(task.run_id, lambda: _open_step_run(task)):
        yield


def _open_step_run(task: StepTask) -> None:
    task.store.activate()
    if task.run_start is not None:  # creates the run unless the engine's records did
        from keel.stores import current_stores

        current_stores().tracking.write_runs([task.run_start])


def _tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))[-MAX_LOG_CHARS:]


def worker_main(conn: Any, environ: dict[str, str] | None = None) -> None:
    """Serve step tasks sent over ``conn`` (a multiprocessing connection) until it closes.

    ``environ`` is the engine's environment when it started this worker: a worker forked
    from a forkserver would otherwise have the server's, from when it started.
    """
    import pickle

    import cloudpickle

    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)

    # A step's print() goes to its captured logs; anything else a worker writes is noise.
    sys.stdout = sys.stderr = io.StringIO()
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            task = cloudpickle.loads(payload)
            result = execute(task)
        except BaseException as exc:  # noqa: BLE001 - e.g. the step cannot be imported here
            result = StepResult(
                "?",
                None,
                f"the worker could not load the step: {type(exc).__name__}: {exc}",
                _tb(exc),
                "",
                _ms(),
                _ms(),
            )
        sys.stdout.seek(0)  # type: ignore[union-attr]
        sys.stdout.truncate()  # type: ignore[union-attr]
        try:
            conn.send_bytes(pickle.dumps(result, protocol=5))
        except (EOFError, OSError):
            return
