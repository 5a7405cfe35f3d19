"""The Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``).

:func:`start_grpc_server` serves an :class:`~keel.serving.protocol.InferenceService` with
the six RPCs of the standard (ServerLive, ServerReady, ModelReady, ServerMetadata,
ModelMetadata, ModelInfer), so ``tritonclient.grpc`` and KServe's client work unchanged.
The wire conversion is :mod:`keel.serving.grpc_codec`; this module is transport only.

Threads and event loops: the gRPC server is a ``grpc.aio`` server running on its own event
loop in its own daemon thread, so it neither needs nor disturbs the loop the REST server
(uvicorn) runs. ``service.infer`` is a coroutine, and Keel's batcher binds itself to the
first loop that submits to it, so every transport must call ``infer`` on one loop: the
``service_loop``: the one the caller passes (the REST app's startup passes uvicorn's),
else the gRPC server's own loop (gRPC alone). Each inference is submitted to the service loop with
:func:`asyncio.run_coroutine_threadsafe` and awaited from the gRPC loop; a call the client
cancels is cancelled there too. The synchronous methods (readiness, metadata)
are called from the gRPC thread directly.

Errors are gRPC status codes with Keel's message as details: ``InvalidInput`` ->
INVALID_ARGUMENT, ``NotFound`` -> NOT_FOUND, ``Overloaded`` (a full batching queue) ->
UNAVAILABLE with a ``retry-after`` trailer, ``PermissionDenied`` -> PERMISSION_DENIED; an
unexpected exception is INTERNAL with no traceback sent (it is logged).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import TYPE_CHECKING, Any

from keel.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    KeelError,
    MissingDependency,
    Overloaded,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from keel.monitoring.prediction_log import PredictionLogger
    from keel.serving.protocol import InferenceRequest, InferenceResponse, InferenceService

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "GrpcServer", "start_grpc_server", "status_code_for"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_START_TIMEOUT_S = 30.0
_log = logging.getLogger(__name__)


def _grpc() -> Any:
    try:
        import grpc
        import grpc.aio
    except ImportError as exc:
        raise MissingDependency(
            "serving over gRPC needs grpcio and protobuf: pip install 'keel-mlops[grpc]'"
        ) from exc
    return grpc


def status_code_for(error: KeelError) -> Any:
    """The ``grpc.StatusCode`` of a Keel error (by class, else by its HTTP status)."""
    codes = _grpc().StatusCode
    if isinstance(error, AlreadyExists):
        return codes.ALREADY_EXISTS
    if isinstance(error, Conflict):
        return codes.FAILED_PRECONDITION
    by_http = {
        400: codes.INVALID_ARGUMENT,
        401: codes.UNAUTHENTICATED,
        403: codes.PERMISSION_DENIED,
        404: codes.NOT_FOUND,
        409: codes.FAILED_PRECONDITION,
        503: codes.UNAVAILABLE,
    }
    return by_http.get(error.http_status, codes.INTERNAL)


def _servicer_class() -> type:
    from keel.serving import grpc_codec
    from keel.serving.proto import grpc_predict_v2_pb2 as pb
    from keel.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    grpc = _grpc()

    class _Servicer(pb_grpc.GRPCInferenceServiceServicer):
        def __init__(
            self,
            service: InferenceService,
            service_loop: asyncio.AbstractEventLoop | None,
            prediction_log: PredictionLogger | None = None,
            deployment: str | None = None,
        ) -> None:
            self._service = service
            self._service_loop = service_loop
            self._log = prediction_log
            self._deployment = deployment

        async def _fail(self, context: Any, exc: BaseException) -> None:
            if isinstance(exc, KeelError):
                trailers: tuple[tuple[str, str], ...] = ()
                if isinstance(exc, Overloaded):
                    trailers = (("retry-after", str(max(1, math.ceil(exc.retry_after)))),)
                await context.abort(status_code_for(exc), exc.message, trailing_metadata=trailers)
            _log.error("gRPC request failed", exc_info=exc)
            await context.abort(grpc.StatusCode.INTERNAL, "internal server error (see the log)")

        async def _answer(self, context: Any, work: Callable[[], Any]) -> Any:
            try:
                return work()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a gRPC status
                await self._fail(context, exc)

        async def _infer(
            self, name: str, version: str | None, request: InferenceRequest, trace: Any = None
        ) -> InferenceResponse:
            loop = self._service_loop
            infer: Any = self._service.infer
            call = (
                infer(name, version, request)
                if trace is None
                else infer(name, version, request, trace)
            )
            if loop is None or loop is asyncio.get_running_loop():
                return await call
            if loop.is_closed() or not loop.is_running():
                call.close()
                raise StoreUnavailable("the event loop this model is served on is not running")
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, loop))

        async def ServerLive(self, request: Any, context: Any) -> Any:
            live = self._service.server_live
            return await self._answer(context, lambda: pb.ServerLiveResponse(live=bool(live())))

        async def ServerReady(self, request: Any, context: Any) -> Any:
            ready = self._service.server_ready
            return await self._answer(context, lambda: pb.ServerReadyResponse(ready=bool(ready())))

        async def ModelReady(self, request: Any, context: Any) -> Any:
            def work() -> Any:
                ready = self._service.model_ready(request.name, request.version or None)
                return pb.ModelReadyResponse(ready=bool(ready))

            return await self._answer(context, work)

        async def ServerMetadata(self, request: Any, context: Any) -> Any:
            metadata = self._service.server_metadata
            return await self._answer(
                context, lambda: grpc_codec.encode_server_metadata(metadata())
            )

        async def ModelMetadata(self, request: Any, context: Any) -> Any:
            def work() -> Any:
                metadata = self._service.model_metadata(request.name, request.version or None)
                return grpc_codec.encode_model_metadata(metadata)

            return await self._answer(context, work)

        async def ModelInfer(self, request: Any, context: Any) -> Any:
            if self._log is not None:
                return await self._logged_infer(request, context)
            try:
                name, version, decoded = grpc_codec.decode_infer_request(request)
                response = await self._infer(name, version, decoded)
                if decoded.id is not None and response.id is None:
                    response.id = decoded.id
                return grpc_codec.encode_infer_response(
                    response, raw=len(request.raw_input_contents) > 0
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes a gRPC status
                await self._fail(context, exc)

        async def _logged_infer(self, request: Any, context: Any) -> Any:
            """ModelInfer recorded in the prediction log; the id is the request's or new,
            answered in the response's ``id`` and the ``keel-request-id`` metadata."""
            import time

            from keel.monitoring.prediction_serving import (
                deployment_name,
                log_served,
                now_ms,
                request_id_of,
            )
            from keel.serving.service import InferTrace

            started, arrived = time.perf_counter(), now_ms()
            trace = InferTrace()
            rid = request_id_of(request.id or None)
            status, error, answer = 200, None, None
            try:
                name, version, decoded = grpc_codec.decode_infer_request(request)
                response = await self._infer(name, version, decoded, trace)
                response.id = rid
                answer = grpc_codec.encode_infer_response(
                    response, raw=len(request.raw_input_contents) > 0
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes a gRPC status
                failure: BaseException = exc
                status = exc.http_status if isinstance(exc, KeelError) else 500
                error = exc.message if isinstance(exc, KeelError) else f"{type(exc).__name__}"
            if status != 404:  # another model's name: not this deployment's request
                runtime = trace.runtime or getattr(self._service, "runtime", None)
                log_served(
                    self._log,  # type: ignore[arg-type]
                    deployment=self._deployment
                    or deployment_name(runtime.name if runtime else None),
                    request_id=rid,
                    time_ms=arrived,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    status=status,
                    error=error,
                    runtime=runtime,
                    prepared=trace.prepared,
                    results=trace.results,
                )
            await context.send_initial_metadata((("keel-request-id", rid),))
            if answer is None:
                await self._fail(context, failure)
            return answer

    return _Servicer


class GrpcServer:
    """A running gRPC server: ``port`` is the bound port, :meth:`stop` ends it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._grace = 5.0

    @property
    def address(self) -> str:
        """``host:port`` as a gRPC target (IPv6 hosts in brackets)."""
        return f"{_host_for_target(self.host)}:{self.port}"

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let running ones finish for ``grace`` seconds, and join."""
        thread, loop, event = self._thread, self._loop, self._stop_requested
        if thread is None or loop is None or event is None:
            return
        self._grace = grace
        if thread.is_alive():
            loop.call_soon_threadsafe(event.set)
            thread.join(grace + 10.0)
        self._thread = None

    async def aclose(self, grace: float = 5.0) -> None:
        """:meth:`stop` from a coroutine, without blocking the running loop meanwhile.

        Use it on the service loop (the REST app's shutdown): in-flight gRPC calls wait on
        that loop for their results, so a blocking :meth:`stop` there would hold them until
        ``grace`` ran out.
        """
        await asyncio.to_thread(self.stop, grace)

    def __enter__(self) -> GrpcServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _host_for_target(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def start_grpc_server(
    service: InferenceService,
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    service_loop: asyncio.AbstractEventLoop | None = None,
    prediction_log: PredictionLogger | None = None,
    deployment: str | None = None,
) -> GrpcServer:
    """Serve ``service`` over gRPC on ``host:port`` (0 picks a free port) and return at once.

    ``max_message_bytes`` bounds requests and responses (64 MiB by default).
    ``service.infer`` runs on ``service_loop`` (the REST app passes uvicorn's, so both
    transports feed one batcher), else on the gRPC server's own loop. The running loop is
    not adopted implicitly: under a greenlet-driven loop (Playwright's sync API, gevent) the
    thread's "running" loop may never run again, and every call would hang. Raises ``InvalidInput``
    when the address cannot be bound. With ``prediction_log``, every ModelInfer is recorded
    in it under ``deployment`` (default: the model's name); the caller closes the logger.
    """
    grpc = _grpc()
    from keel.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    if max_message_bytes <= 0:
        raise InvalidInput(f"max_message_bytes must be positive, not {max_message_bytes}")
    servicer = _servicer_class()(service, service_loop, prediction_log, deployment)
    handle = GrpcServer(host, port)
    started = threading.Event()
    failure: list[BaseException] = []

    async def serve() -> None:
        try:
            server = grpc.aio.server(
                options=[
                    ("grpc.max_receive_message_length", max_message_bytes),
                    ("grpc.max_send_message_length", max_message_bytes),
                    ("grpc.so_reuseport", 0),
                ]
            )
            pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
            handle.port = server.add_insecure_port(f"{_host_for_target(host)}:{port}")
            await server.start()
        except Exception as exc:  # noqa: BLE001 - reported to the caller of start_grpc_server
            failure.append(exc)
            started.set()
            return
        handle._stop_requested = asyncio.Event()
        started.set()
        try:
            await handle._stop_requested.wait()
        finally:
            await server.stop(handle._grace)

    def run() -> None:
        loop = asyncio.new_event_loop()
        handle._loop = loop
        try:
            loop.run_until_complete(serve())
        finally:
            # Tasks the service started on this loop (a batcher's worker) end with it.
            leftover = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name=f"keel-grpc-{port}", daemon=True)
    handle._thread = thread
    thread.start()
    if not started.wait(_START_TIMEOUT_S):
        raise RuntimeError(f"the gRPC server on {host}:{port} did not start")
    if failure:
        thread.join()
        raise InvalidInput(
            f"cannot serve gRPC on {host}:{port}: {failure[0]}; is the port already in use?"
        ) from failure[0]
    return handle
