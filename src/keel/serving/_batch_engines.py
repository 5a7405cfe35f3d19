"""Where batch chunks are predicted: in this process, a local process pool, or Ray actors.

Every engine runs the same :class:`ChunkPredictor`: it verifies the model files' digests,
loads the model once, and turns an Arrow record batch of feature columns into an Arrow
table of predictions. An engine has ``submit(batch) -> handle``, ``result(handle)`` and
``close()``; the caller keeps a bounded, ordered queue of handles, so memory stays bounded
and output rows keep the input's order.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError, require

from ._model_files import ModelFiles, verify_files

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ChunkPredictor", "InlineEngine", "ProcessEngine", "RayEngine"]


class ChunkPredictor:
    """Predicts record batches with one loaded model (digests verified before loading)."""

    def __init__(
        self, folder: str, files: Sequence[Any], *, tensor: bool, probabilities: bool
    ) -> None:
        from keel.registry.packaging import load_model_dir

        verify_files(Path(folder), files)
        self.model = load_model_dir(Path(folder))
        self.tensor = tensor
        self.probabilities = probabilities and _has_proba(self.model)

    def __call__(self, batch: pa.RecordBatch) -> pa.Table:
        """Return the prediction columns for ``batch`` (same number of rows, same order)."""
        import numpy as np
        import pyarrow as pa

        frame = batch.to_pandas()
        data: Any = frame.to_numpy() if self.tensor else frame
        rows = len(frame)
        columns: dict[str, Any] = {}
        signature = self.model.signature
        if rows == 0 and (signature is None or signature.outputs is None):
            columns["prediction"] = np.empty(0, dtype="float64")
        else:
            columns.update(_output_columns(self.model.predict(data), rows))
        if self.probabilities:
            classes = getattr(self.model.unwrap(), "classes_", None)
            if rows == 0:
                proba = np.empty((0, 0 if classes is None else len(classes)))
            else:
                proba = np.asarray(self.model.predict_proba(data), dtype="float64")
            names = range(proba.shape[1]) if classes is None else classes
            for i, label in enumerate(names):
                columns[f"probability_{label}"] = proba[:, i]
        return pa.table({name: _arrow(values) for name, values in columns.items()})


def _has_proba(model: Any) -> bool:
    return callable(getattr(model.unwrap(), "predict_proba", None))


def _output_columns(output: Any, rows: int) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.DataFrame):
        result = {str(c): output[c].to_numpy() for c in output.columns}
    elif isinstance(output, pd.Series):
        result = {"prediction": output.to_numpy()}
    else:
        array = np.asarray(output)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 1:
            result = {"prediction": array}
        elif array.ndim == 2:
            result = {f"prediction_{i}": array[:, i] for i in range(array.shape[1])}
        else:
            raise InvalidInput(
                f"the model returned a {array.ndim}-D array of shape {array.shape}; batch "
                "prediction writes 1-D or 2-D outputs only"
            )
    for name, values in result.items():
        if len(values) != rows:
            raise InvalidInput(
                f"the model returned {len(values)} values for {name!r} from {rows} input rows"
            )
    return result


def _arrow(values: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"cannot store the model's output as a Parquet column: {exc}") from None


class InlineEngine:
    """Predicts each chunk in this process, when its result is asked for."""

    def __init__(self, files: ModelFiles, *, tensor: bool, probabilities: bool) -> None:
        self._predict = ChunkPredictor(
            str(files.folder), files.files, tensor=tensor, probabilities=probabilities
        )
        self.workers = 1

    def submit(self, batch: pa.RecordBatch) -> Any:
        return batch

    def result(self, handle: Any) -> pa.Table:
        return self._predict(handle)

    def close(self, *, cancel: bool = False) -> None:
        return None


_WORKER: ChunkPredictor | None = None


def _init_worker(folder: str, files: Sequence[Any], tensor: bool, probabilities: bool) -> None:
    global _WORKER
    _WORKER = ChunkPredictor(folder, files, tensor=tensor, probabilities=probabilities)


def _predict_in_worker(batch: pa.RecordBatch) -> pa.Table:
    if _WORKER is None:  # the initializer failed: the pool reports that error instead
        raise KeelError("this batch worker has no model loaded")
    return _WORKER(batch)


class ProcessEngine:
    """A pool of spawned processes; each verifies and loads the model once, then takes chunks."""

    def __init__(
        self, files: ModelFiles, *, workers: int, tensor: bool, probabilities: bool
    ) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(str(files.folder), files.files, tensor, probabilities),
        )

    def submit(self, batch: pa.RecordBatch) -> Any:
        return self._pool.submit(_predict_in_worker, batch)

    def result(self, handle: Any) -> pa.Table:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return handle.result()
        except BrokenProcessPool:
            raise KeelError(
                "a batch worker process died (out of memory, or the model failed to load); "
                "try fewer --workers or a smaller --chunk-rows"
            ) from None

    def close(self, *, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)


class _RayPredictor:
    """A Ray actor: writes the shipped model files to a temp folder, verifies, loads."""

    def __init__(
        self, blobs: dict[str, bytes], files: list[Any], tensor: bool, probabilities: bool
    ) -> None:
        folder = tempfile.mkdtemp(prefix="keel-batch-model-")
        try:
            for path, data in blobs.items():
                target = Path(folder) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self._predict = ChunkPredictor(
                folder, files, tensor=tensor, probabilities=probabilities
            )
        finally:  # the model is in memory now; its files are not needed
            shutil.rmtree(folder, ignore_errors=True)

    def predict(self, batch: pa.RecordBatch) -> pa.Table:
        return self._predict(batch)


class RayEngine:
    """Ray actors (one per worker) on the connected cluster, or a local Ray started here."""

    def __init__(
        self,
        files: ModelFiles,
        *,
        workers: int | None,
        tensor: bool,
        probabilities: bool,
        address: str | None = None,
    ) -> None:
        ray: Any = require("ray", "ray")
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            local = address is None and not os.environ.get("RAY_ADDRESS")
            ray.init(
                address=address,
                num_cpus=(workers or os.cpu_count() or 1) if local else None,
                include_dashboard=False,
                log_to_driver=False,
            )
            self._started = True
        self._actors: list[Any] = []
        self._next = 0
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
            self.workers = workers or cpus
            blobs = ray.put(files.read_all())
            actor = ray.remote(num_cpus=1)(_RayPredictor)
            self._actors = [
                actor.remote(blobs, list(files.files), tensor, probabilities)
                for _ in range(self.workers)
            ]
        except BaseException:
            self.close()
            raise

    def submit(self, batch: pa.RecordBatch) -> Any:
        actor = self._actors[self._next % len(self._actors)]
        self._next += 1
        return actor.predict.remote(batch)

    def result(self, handle: Any) -> pa.Table:
        try:
            return self._ray.get(handle)
        except self._ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise KeelError(f"a Ray batch task failed: {exc}") from None
        except self._ray.exceptions.RayActorError as exc:  # the model failed to load, or OOM
            text = " ".join(str(exc).split())[:300]
            raise KeelError(f"a Ray batch worker died: {text}") from None

    def close(self, *, cancel: bool = False) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        if self._started:
            self._ray.shutdown()
