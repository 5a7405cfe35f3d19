"""``ModelService``: the :class:`~keel.serving.protocol.InferenceService` for one version.

It routes by name and version (an unknown one is :class:`~keel.errors.NotFound`), checks
each request against the model (:class:`~keel.errors.InvalidInput`), and sends it through
the :class:`~keel.serving.batching.MicroBatcher`. A version that fails to load or warm is
never ready: :meth:`ModelService.load` raises, readiness stays false and ``infer`` refuses
with ``StoreUnavailable`` (503) instead of reaching the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from keel._version import __version__
from keel.errors import InvalidInput, KeelError, NotFound, StoreUnavailable

from .batching import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_LATENCY_MS,
    DEFAULT_MAX_QUEUE,
    MicroBatcher,
)
from .protocol import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    Tensor,
    datatype_of,
)
from .runtime import ModelRuntime, Prepared

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["InferTrace", "ModelService"]

EXTENSIONS = ["binary_tensor_data"]


@dataclass
class InferTrace:
    """What a request went through, filled in as it goes (for the prediction log): the
    runtime that answered, the checked input and the outputs."""

    runtime: ModelRuntime | None = None
    prepared: Prepared | None = None
    results: dict[str, np.ndarray] | None = None


class ModelService:
    """Serves one model version; construct, then :meth:`load` (load and warm) once."""

    def __init__(
        self,
        loader: Callable[[], ModelRuntime],
        *,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        max_latency_ms: float = DEFAULT_MAX_LATENCY_MS,
        max_queue: int = DEFAULT_MAX_QUEUE,
        batching: bool = True,
    ) -> None:
        self._loader = loader
        self.runtime: ModelRuntime | None = None
        self.batcher: MicroBatcher[Prepared, dict[str, np.ndarray]] = MicroBatcher(
            self._run_batch,
            lambda item: item.rows,
            max_batch_size=max_batch_size if batching else 1,
            max_latency_ms=max_latency_ms if batching else 0.0,
            max_queue=max_queue,
        )
        self.predict_calls = 0

    @classmethod
    def from_uri(cls, model_uri: str, **options: object) -> ModelService:
        """A service for the version ``models:/name@alias`` (or ``/version``) names."""
        from .runtime import load_runtime

        return cls(lambda: load_runtime(model_uri), **options)  # type: ignore[arg-type]

    def load(self) -> None:
        """Load and warm the model; on any failure it stays not ready and this raises."""
        runtime = self._loader()
        label = runtime.name if runtime.version is None else f"{runtime.name}/{runtime.version}"
        try:
            runtime.warm()
        except KeelError as exc:
            raise type(exc)(f"{label} failed to warm up, not served: {exc.message}") from exc
        except Exception as exc:
            raise KeelError(
                f"{label} failed to warm up on its input example, not served: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.runtime = runtime

    async def close(self) -> None:
        """Stop the batcher."""
        await self.batcher.close()

    # -- InferenceService -------------------------------------------------------------------

    def server_live(self) -> bool:
        """The process answers."""
        return True

    def server_ready(self) -> bool:
        """Ready once the model is loaded and warmed."""
        return self.runtime is not None

    def server_metadata(self) -> ServerMetadata:
        """Keel's name, version and the protocol extensions it speaks."""
        return ServerMetadata(name="keel", version=__version__, extensions=list(EXTENSIONS))

    def model_ready(self, name: str, version: str | None) -> bool:
        """Whether ``name`` (at ``version``) is ready; ``NotFound`` if it is not served."""
        return self._find(name, version) is not None

    def model_metadata(self, name: str, version: str | None) -> ModelMetadata:
        """Inputs and outputs of the served model; ``NotFound`` if it is not served."""
        return self._ready(name, version).metadata()

    async def infer(
        self,
        name: str,
        version: str | None,
        request: InferenceRequest,
        trace: InferTrace | None = None,
    ) -> InferenceResponse:
        """Check, batch and predict; the response carries the requested outputs in order.

        ``trace``, when given, receives the runtime, the checked input and the outputs."""
        runtime = self._ready(name, version)
        if trace is not None:
            trace.runtime = runtime
        prepared = runtime.prepare(request)
        if trace is not None:
            trace.prepared = prepared
        results = await self.batcher.submit(prepared)
        if trace is not None:
            trace.results = results
        outputs = [
            Tensor(n, datatype_of(results[n]), list(results[n].shape), results[n])
            for n in prepared.outputs
        ]
        return InferenceResponse(
            model_name=runtime.name,
            model_version=runtime.version,
            outputs=outputs,
            id=request.id,
        )

    async def predict_frame(
        self, frame: pd.DataFrame, trace: InferTrace | None = None
    ) -> np.ndarray:
        """``predict`` for a DataFrame (MLflow's ``/invocations``), batched like ``infer``."""
        runtime = self._ready(None, None)
        if trace is not None:
            trace.runtime = runtime
        prepared = runtime.prepare_frame(frame)
        return await self.predict_prepared(prepared, trace)

    def prepare_rows(self, names: list[str], matrix: np.ndarray) -> Prepared | None:
        """``ModelRuntime.prepare_rows`` of the served model (None: use a DataFrame)."""
        return self._ready(None, None).prepare_rows(names, matrix)

    async def predict_prepared(
        self, prepared: Prepared, trace: InferTrace | None = None
    ) -> np.ndarray:
        """``predict`` for an input :meth:`prepare_rows` checked, batched like ``infer``."""
        if trace is not None:
            trace.runtime = trace.runtime or self.runtime
            trace.prepared = prepared
        results = await self.batcher.submit(prepared)
        if trace is not None:
            trace.results = results
        return results["predict"]

    # -- helpers ----------------------------------------------------------------------------

    def _find(self, name: str | None, version: str | None) -> ModelRuntime | None:
        runtime = self.runtime
        if runtime is None:
            return None
        if name is not None and name != runtime.name:
            raise NotFound(
                f"model {name!r} is not served here; this server serves {runtime.name!r}"
            )
        if version not in (None, "", runtime.version):
            raise NotFound(
                f"version {version!r} of model {runtime.name!r} is not served here; "
                f"this server serves version {runtime.version}"
            )
        return runtime

    def _ready(self, name: str | None, version: str | None) -> ModelRuntime:
        runtime = self._find(name, version)
        if runtime is None:
            raise StoreUnavailable("the model is not loaded or failed to warm; it takes no traffic")
        return runtime

    def _run_batch(self, batch: list[Prepared]) -> list[dict[str, np.ndarray] | BaseException]:
        """Predict a merged batch once, split per request; alone-by-one if the batch fails."""
        runtime = self.runtime
        if runtime is None:
            error = StoreUnavailable("the model is not loaded")
            return [error] * len(batch)
        try:
            self.predict_calls += 1
            merged = runtime.run(batch)
        except Exception as exc:  # noqa: BLE001 - reported to the callers below
            if len(batch) == 1:
                return [_as_error(exc)]
            return [self._run_one(runtime, item) for item in batch]
        out: list[dict[str, np.ndarray] | BaseException] = []
        start = 0
        for item in batch:
            end = start + item.rows
            out.append({n: merged[n][start:end] for n in item.outputs})
            start = end
        return out

    def _run_one(
        self, runtime: ModelRuntime, item: Prepared
    ) -> dict[str, np.ndarray] | BaseException:
        try:
            self.predict_calls += 1
            return runtime.run([item])
        except Exception as exc:  # noqa: BLE001 - reported to this caller
            return _as_error(exc)


def _as_error(exc: Exception) -> BaseException:
    if isinstance(exc, KeelError):
        return exc
    if isinstance(exc, ValueError | TypeError):
        return InvalidInput(f"the model refused the input: {type(exc).__name__}: {exc}")
    return KeelError(f"the model failed: {type(exc).__name__}: {exc}")
