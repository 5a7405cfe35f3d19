"""The tracking SDK: ``with keel.start_run(...) as run: run.log_metric(...)``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any

from keel.errors import Conflict, InvalidInput, NotFound
from keel.store.clock import now_ms
from keel.tracking.buffer import MetricBuffer
from keel.tracking.context import current_user, source_info, writer_id
from keel.tracking.entities import ArtifactEntry, Run, RunStatus
from keel.tracking.lifecycle import _install_exit_hooks, _open_lock, _open_runs, _stack
from keel.tracking.validation import (
    INT64_MAX,
    check_key,
    check_metric_value,
    check_name,
    check_step,
    check_timestamp,
    param_value,
    tag_value,
)

if TYPE_CHECKING:
    from keel.registry.entities import ModelVersion
    from keel.registry.packaging import ModelInfo
    from keel.stores import Stores

__all__ = ["ActiveRun", "active_run", "end_run", "start_run"]

DEFAULT_EXPERIMENT = "Default"


def clean_artifact_path(path: str) -> str:
    """Return a normalised relative artifact path, or raise for absolute or ``..`` paths."""
    if not isinstance(path, str):
        raise InvalidInput(f"artifact path must be a string, got {type(path).__name__}")
    pure = PurePosixPath(path.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise InvalidInput(f"artifact path {path!r} must be relative and must not contain '..'")
    cleaned = pure.as_posix().strip("/")
    return "" if cleaned == "." else cleaned


class ActiveRun:
    """A run this process is writing; use it as a context manager."""

    def __init__(self, stores: Stores, run: Run, *, attached: bool = False) -> None:
        from keel.config import get_settings

        settings = get_settings()
        self._stores = stores
        self.run_id = run.run_id
        self.experiment_id = run.experiment_id
        self.name = run.name
        # An attached run was started by someone else, who ends it and keeps it alive
        # (a pipeline step's run: the engine); this process only logs to it.
        self.attached = attached
        self._valid_keys: set[str] = set()
        self._ended = False
        self._writer = writer_id()
        tracking = stores.tracking
        run_id = run.run_id
        self._buffer = MetricBuffer(
            lambda rows: tracking.log_batch(run_id, metrics=rows),
            flush_interval=settings.metric_flush_interval,
            max_size=settings.metric_buffer_size,
            heartbeat=None
            if attached
            else (lambda: tracking.heartbeat(run_id, self._writer, now_ms())),
            heartbeat_interval=settings.heartbeat_interval,
            name=f"keel-run-{run_id[:8]}",
        )
        with _open_lock:
            _open_runs.add(self)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id} {self.name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self.end(status)

    # -- state ---------------------------------------------------------------------------
    @property
    def info(self) -> Run:
        """The run as stored now (buffered metrics are flushed first)."""
        self.flush()
        return self._stores.tracking.get_run(self.run_id)

    def _check_open(self) -> None:
        if self._ended:
            raise Conflict(f"run {self.run_id} has ended; start or resume a run to log more")

    def flush(self) -> None:
        """Write buffered metrics now."""
        self._buffer.flush()

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        """Flush, record the final status and end time, and return the finished run.

        An attached run is only detached: whoever started it records its end.
        """
        status = RunStatus.parse(status)
        if self._ended or self.attached:
            self.detach()
            return self._stores.tracking.get_run(self.run_id)
        try:
            self.detach()
        finally:
            run = self._stores.tracking.end_run(self.run_id, status, now_ms())
        return run

    def detach(self) -> None:
        """Flush buffered metrics and stop being the active run, leaving the run open."""
        if self._ended:
            return
        self._ended = True
        with _open_lock:
            _open_runs.discard(self)
        stack = _stack()
        if self in stack:
            stack.remove(self)
        self._buffer.close()

    # -- params, metrics, tags -----------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record a parameter; logging another value for the same key is a ``Conflict``."""
        self.log_params({key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record several parameters at once."""
        self._check_open()
        if not isinstance(params, Mapping):
            raise InvalidInput(f"params must be a mapping, got {type(params).__name__}")
        clean = {check_key("param", k): param_value(k, v) for k, v in params.items()}
        self._stores.tracking.log_batch(self.run_id, params=clean)

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        """Queue one metric point (NaN and ±inf are kept); it is written in the background."""
        if self._ended:
            self._check_open()
        if key not in self._valid_keys:
            self._valid_keys.add(check_key("metric", key))
        if type(value) is not float:
            value = check_metric_value(key, value)
        if type(step) is not int or not -INT64_MAX <= step <= INT64_MAX:
            step = check_step(step)
        ts = int(time.time() * 1000) if timestamp is None else check_timestamp(timestamp)
        self._buffer.add((key, value, ts, step))

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        """Queue several metrics at the same step."""
        if not isinstance(metrics, Mapping):
            raise InvalidInput(f"metrics must be a mapping, got {type(metrics).__name__}")
        ts = now_ms() if timestamp is None else check_timestamp(timestamp)
        for key, value in metrics.items():
            self.log_metric(key, value, step, ts)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag (tags, unlike params, may change)."""
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set several tags at once."""
        self._check_open()
        if not isinstance(tags, Mapping):
            raise InvalidInput(f"tags must be a mapping, got {type(tags).__name__}")
        clean = {check_key("tag", k): tag_value(k, v) for k, v in tags.items()}
        self._stores.tracking.log_batch(self.run_id, tags=clean)

    # -- artifacts, datasets, models -----------------------------------------------------
    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> str:
        """Store one file under ``artifact_path``; return its path within the run."""
        self._check_open()
        path = Path(local_path)
        if path.is_dir():
            raise InvalidInput(f"{str(path)!r} is a folder; use log_artifacts for folders")
        if not path.is_file():
            raise InvalidInput(f"no file at {str(path)!r}")
        prefix = clean_artifact_path(artifact_path or "")
        target = f"{prefix}/{path.name}" if prefix else path.name
        blob = self._stores.artifacts.put_file(path)
        self._stores.tracking.add_artifacts(
            self.run_id, [ArtifactEntry(target, blob.digest, blob.size)]
        )
        return target

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> list[str]:
        """Store every file under a folder, keeping its layout; return their run paths."""
        self._check_open()
        folder = Path(local_dir)
        if not folder.is_dir():
            raise InvalidInput(f"no folder at {str(folder)!r}")
        prefix = clean_artifact_path(artifact_path or "")
        entries = []
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = file.relative_to(folder).as_posix()
            target = f"{prefix}/{rel}" if prefix else rel
            blob = self._stores.artifacts.put_file(file)
            entries.append(ArtifactEntry(target, blob.digest, blob.size))
        self._stores.tracking.add_artifacts(self.run_id, entries)
        return [e.path for e in entries]

    def log_text(self, text: str, artifact_file: str) -> str:
        """Store ``text`` as a UTF-8 file at ``artifact_file``; return its run path."""
        self._check_open()
        if not isinstance(text, str):
            raise InvalidInput(f"text must be a string, got {type(text).__name__}")
        target = clean_artifact_path(artifact_file)
        if not target:
            raise InvalidInput("artifact_file must name a file")
        blob = self._stores.artifacts.put_bytes(text.encode("utf-8"))
        self._stores.tracking.add_artifacts(
            self.run_id, [ArtifactEntry(target, blob.digest, blob.size)]
        )
        return target

    def log_dataset(
        self,
        data: Any,
        *,
        name: str | None = None,
        context: str = "training",
        source: str | None = None,
    ) -> None:
        """Record that this run used ``data`` (DataFrame, array or path) in ``context``."""
        from keel.tracking.datasets import dataset_input

        self._check_open()
        item = dataset_input(data, name=name, context=context, source=source)
        self._stores.tracking.log_inputs(self.run_id, [item])

    def log_model(
        self,
        model: Any,
        name: str = "model",
        *,
        input_example: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        registered_model_name: str | None = None,
    ) -> ModelInfo | ModelVersion:
        """Save ``model`` as artifacts under ``name``; register it too if a name is given.

        Returns the registered ``ModelVersion`` when ``registered_model_name`` is set,
        else the saved model's ``ModelInfo``.
        """
        import tempfile

        from keel.registry.packaging import save_model_dir

        self._check_open()
        target = clean_artifact_path(name)
        if not target:
            raise InvalidInput("a model needs a non-empty artifact name, such as 'model'")
        with tempfile.TemporaryDirectory(prefix="keel-model-") as tmp:
            folder = Path(tmp) / "model"
            info = save_model_dir(
                model, folder, flavor=flavor, input_example=input_example, signature=signature
            )
            self.log_artifacts(folder, target)
        if registered_model_name is not None:
            from keel.registry.api import register_model

            return register_model(f"runs:/{self.run_id}/{target}", registered_model_name)
        return info


def _resolve_experiment(stores: Stores, experiment: str | None, experiment_id: str | None) -> str:
    if experiment_id is not None:
        return stores.tracking.get_experiment(experiment_id).experiment_id
    name = check_name("experiment", DEFAULT_EXPERIMENT if experiment is None else experiment)
    found = stores.tracking.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    from keel.errors import AlreadyExists

    try:
        return stores.tracking.create_experiment(name).experiment_id
    except AlreadyExists:  # another process created it a moment ago
        found = stores.tracking.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    *,
    experiment_id: str | None = None,
    run_id: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ActiveRun:
    """Start (or, with ``run_id``, resume) a run and make it this thread's active run.

    Use it as a context manager: leaving the block normally marks the run finished, an
    exception marks it failed (and propagates), Ctrl-C marks it killed.
    """
    from keel.config import get_settings
    from keel.stores import current_stores

    _install_exit_hooks()
    stores = current_stores()
    settings = get_settings()
    active_run()  # opens a pending run (a pipeline step's) so the new run nests under it
    stack = _stack()
    if stack and stack[-1].attached and parent_run_id is None:
        nested = True  # inside a pipeline step: a new run is one of the step's children
    if stack and not nested and parent_run_id is None:
        raise InvalidInput(
            f"run {stack[-1].run_id} is already active; end it first or pass nested=True"
        )
    now = now_ms()
    stores.tracking.fail_stale_runs(now, int(settings.heartbeat_timeout * 1000))
    if run_id is not None:
        run = stores.tracking.claim_run(
            run_id, writer_id(), now, int(settings.heartbeat_timeout * 1000)
        )
    else:
        if parent_run_id is None and nested and stack:
            parent_run_id = stack[-1].run_id
        if experiment is None and experiment_id is None and parent_run_id is not None:
            # A child run named no experiment: it belongs with its parent, not in Default.
            experiment_id = (
                stack[-1].experiment_id
                if stack and stack[-1].run_id == parent_run_id
                else stores.tracking.get_run(parent_run_id).experiment_id
            )
        exp_id = _resolve_experiment(stores, experiment, experiment_id)
        clean_tags = {check_key("tag", k): tag_value(k, v) for k, v in (tags or {}).items()}
        src = source_info()
        run = stores.tracking.create_run(
            exp_id,
            name=check_name("run", run_name) if run_name is not None else _generated_name(),
            user=current_user(),
            start_time=now,
            source=src.source,
            git_commit=src.git_commit,
            git_dirty=src.git_dirty,
            parent_run_id=parent_run_id,
            tags=clean_tags,
            writer=writer_id(),
        )
    active = ActiveRun(stores, run)
    stack.append(active)
    return active


@contextmanager
def attached_run(run_id: str) -> Iterator[ActiveRun]:
    """Yield the existing run ``run_id`` as this thread's active run, without ending it.

    For a run that another part of Keel started and will end (a pipeline step's run):
    ``keel.log_metric``, ``keel.log_model``… inside the block go to it, and a
    ``keel.start_run()`` inside it starts a child of it. Leaving the block flushes what was
    logged and leaves the run open.
    """
    from keel.stores import current_stores

    stores = current_stores()
    active = ActiveRun(stores, stores.tracking.get_run(run_id), attached=True)
    _stack().append(active)
    try:
        yield active
    finally:
        active.detach()


def _generated_name() -> str:
    import secrets

    return f"run-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def active_run() -> ActiveRun | None:
    """Return this thread's innermost active run, or None."""
    stack = _stack()
    pending = getattr(_pending, "value", None)
    if pending is not None and pending[2] is None and len(stack) == pending[3]:
        _open(pending)
    return stack[-1] if stack else None


# A run attached lazily (see pending_run): [run id, preparation, its ActiveRun once
# opened, the depth of this thread's run stack when the block began].
_pending = threading.local()


@contextmanager
def pending_run(run_id: str, prepare: Callable[[], None] | None = None) -> Iterator[None]:
    """Make ``run_id`` this thread's active run for the block, opened only when first needed.

    As :func:`attached_run`, but nothing is read (and ``prepare``, e.g. pointing this
    process at the run's stores, is not called) until code in the block asks for the
    active run: a pipeline step that logs nothing costs nothing (opening the stores in a
    fresh worker process takes ~0.2 s, more than a trivial step's whole cost).
    """
    _pending.value = [run_id, prepare, None, len(_stack())]
    try:
        yield
    finally:
        opened = _pending.value[2]
        _pending.value = None
        if opened is not None:
            opened.detach()


def _open(pending: list[Any]) -> None:
    from keel.stores import current_stores

    run_id, prepare = pending[0], pending[1]
    if prepare is not None:
        prepare()
    stores = current_stores()
    pending[2] = ActiveRun(stores, stores.tracking.get_run(run_id), attached=True)
    _stack().append(pending[2])


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End this thread's innermost active run (no-op if none)."""
    run = active_run()
    if run is not None:
        run.end(status)


def require_active_run() -> ActiveRun:
    """Return the active run, or raise ``NotFound`` telling how to start one."""
    run = active_run()
    if run is None:
        raise NotFound("no active run; start one with `with keel.start_run(...) as run:`")
    return run
