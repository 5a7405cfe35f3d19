"""Loaded versions of the deployment data plane: load, warm, check, smoke, drain, close.

A :class:`Slot` is one :class:`~keel.serving.service.ModelService` serving one backend of
one deployment, with the count of requests inside it. :func:`open_slot` builds it: the
version is loaded and warmed in a worker thread (the event loop keeps serving), its health
checked (ready, metadata readable), then a smoke prediction sent through its batcher — the
path live requests take — on the version's registered input example. A version without an
input example is smoke-tested by its warm-up alone (``ModelRuntime.warm`` predicts a row
synthesised from the signature), so it still never takes traffic without one prediction.

A retired slot is closed only after its last request left (:meth:`Slot.retire`), so a
traffic change fails no request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.deploy.traffic import Backend
    from keel.serving.runtime import ModelRuntime
    from keel.serving.service import ModelService
    from keel.stores import Stores

__all__ = ["ServiceFactory", "Slot", "open_slot", "service_factory"]

ServiceFactory = Callable[[str, int], "ModelService"]
_log = logging.getLogger(__name__)


def service_factory(stores: Stores | None = None, **options: Any) -> ServiceFactory:
    """Return ``(model, version) -> ModelService`` (not loaded yet) reading from ``stores``.

    Without ``stores`` the services load through the SDK's current stores
    (``ModelService.from_uri``); ``options`` go to ``ModelService`` (batching settings).
    """
    from keel.serving.service import ModelService

    def make(model: str, version: int) -> ModelService:
        if stores is None:
            return ModelService.from_uri(f"models:/{model}/{version}", **options)
        return ModelService(lambda: _load_runtime(stores, model, version), **options)

    return make


def _load_runtime(stores: Stores, model: str, version: int) -> ModelRuntime:
    """Load ``model/version`` from ``stores``, every file's digest verified before reading."""
    # _materialise is the registry's one verified download; the SDK's load_model would read
    # the process's current stores, which need not be the server's.
    from keel.registry.api import _materialise
    from keel.registry.packaging import load_model_dir
    from keel.serving.runtime import ModelRuntime

    found = stores.registry.get_model_version(model, version)
    folder = _materialise(stores, found.artifact_digest, f"models:/{model}/{version}")
    return ModelRuntime(load_model_dir(folder), name=model, version=str(version))


class Slot:
    """One loaded, warm version behind one deployment, and the requests inside it."""

    def __init__(self, backend: Backend, service: ModelService) -> None:
        self.key = backend.key
        self.service = service
        self.inflight = 0
        self.retired = False
        self._idle: asyncio.Event | None = None

    @property
    def runtime(self) -> ModelRuntime:
        """The loaded runtime (a slot is routed to only once loaded)."""
        runtime = self.service.runtime
        if runtime is None:  # unreachable for a routed slot; refuse rather than crash
            from keel.errors import StoreUnavailable

            raise StoreUnavailable(f"{self.key} is not loaded; it takes no traffic")
        return runtime

    def enter(self) -> None:
        """Count a request in (synchronously with reading the routing table)."""
        self.inflight += 1

    def leave(self) -> None:
        """Count a request out; wake a pending retirement when it was the last."""
        self.inflight -= 1
        if self.inflight == 0 and self._idle is not None:
            self._idle.set()

    async def retire(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) for the requests inside to finish, then close."""
        self.retired = True
        if self.inflight:
            self._idle = asyncio.Event()
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                _log.warning(
                    "%s: %d request(s) still running after %.0f s; closing anyway",
                    self.key,
                    self.inflight,
                    timeout,
                )
        await self.service.close()


async def open_slot(
    deployment: str, backend: Backend, factory: ServiceFactory, *, smoke_timeout: float
) -> Slot:
    """Return a slot for ``backend``, loaded, healthy and smoke-tested; or raise a KeelError.

    The error keeps the cause's class (``NotFound`` for a version that does not exist)
    and names the deployment and the version; nothing of a failed slot stays open.
    """
    label = f"deployment {deployment!r}: version {backend.key}"
    try:
        service = factory(backend.model, backend.version)
    except KeelError as exc:
        raise type(exc)(f"{label} cannot be served: {exc.message}") from exc
    try:
        await asyncio.to_thread(service.load)
        if not service.server_ready():
            raise KeelError("it is not ready after loading")
        await asyncio.wait_for(_smoke(service), smoke_timeout)
    except BaseException as exc:
        await service.close()
        if isinstance(exc, KeelError):
            raise _named(exc, f"{label} failed its checks, not served: {exc.message}") from exc
        if isinstance(exc, TimeoutError):
            raise KeelError(
                f"{label}: the smoke prediction took over {smoke_timeout:g} s, not served"
            ) from exc
        if isinstance(exc, Exception):
            raise KeelError(f"{label} failed to load: {type(exc).__name__}: {exc}") from exc
        raise
    return Slot(backend, service)


def _named(exc: KeelError, message: str) -> KeelError:
    try:
        return type(exc)(message)
    except TypeError:  # a subclass with another constructor
        return KeelError(message)


async def _smoke(service: ModelService) -> None:
    """Predict the version's input example through its batcher; check one answer per row."""
    import numpy as np

    from keel.registry.packaging import input_example_to_data
    from keel.serving.protocol import InferenceRequest, Tensor, datatype_of

    runtime = service.runtime
    if runtime is None:
        raise KeelError("it is not loaded")
    runtime.metadata()  # health: the protocol metadata must be readable
    example = runtime.model.metadata.input_example
    if example is None:
        return  # warm() already predicted a row synthesised from the signature
    data = input_example_to_data(example, runtime.model.signature)
    if isinstance(data, np.ndarray) and runtime.schema.kind == "tensor":
        tensor = Tensor("input", datatype_of(data), list(data.shape), data)
        prepared = runtime.prepare(InferenceRequest(inputs=[tensor]))
    else:
        import pandas as pd

        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        prepared = runtime.prepare_frame(frame)
    results = await service.batcher.submit(prepared)
    for name in prepared.outputs:
        got = np.asarray(results[name])
        if got.ndim == 0 or got.shape[0] != prepared.rows:
            raise KeelError(
                f"its smoke prediction on the input example gave {name!r} of shape "
                f"{list(got.shape)} for {prepared.rows} row(s)"
            )
