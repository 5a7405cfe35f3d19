"""The model server's REST app: Open Inference Protocol v2, MLflow ``/invocations``, metrics.

Routes (thin over :class:`~keel.serving.protocol.InferenceService`)::

    GET  /v2                                   server metadata
    GET  /v2/health/live | /v2/health/ready    200 true, 400 false (empty body, as specified)
    GET  /v2/models/{name}[/versions/{v}]      model metadata
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer
    POST /invocations                          MLflow scoring formats → {"predictions": …}
    GET  /metrics                              Prometheus text (keel.serving._metrics)

Protocol routes answer errors with the protocol's body ``{"error": "<message>"}`` (400 bad
input, 404 unknown model/version, 503 not ready or overloaded — with ``Retry-After``);
``/invocations`` uses Keel's ``{"error_code", "message"}``. Bodies are read once as bytes,
parsed with orjson, tensors built with numpy; nothing validates data arrays element by
element in Python.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.errors import InvalidInput, KeelError, Overloaded

from ._metrics import CONTENT_TYPE, ServingMetrics
from .codec_binary import HEADER_LENGTH, split_body
from .codec_json import decode_request, encode_response, parse_json
from .protocol import InferenceRequest, InferenceResponse

if TYPE_CHECKING:
    from keel.monitoring.prediction_log import PredictionLogger

    from .service import InferTrace, ModelService

__all__ = ["MAX_BODY_BYTES", "REQUEST_ID_HEADER", "app_from_env", "create_app", "read_body"]

MAX_BODY_BYTES = 256 * 1024 * 1024
REQUEST_ID_HEADER = "Keel-Request-Id"
_log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


class _AfterSend(BackgroundTask):
    """Calls ``call(*args)`` once the response is sent (Starlette awaits a response's
    ``background`` after its last body ``send``, on the same loop step).

    A prediction request is logged so because the log's work, and its take-in of the
    queue every ``PENDING_RECORDS`` requests, would otherwise delay the answer it
    follows and every answer after it in the micro-batch: at 8 connections, 1 row,
    /invocations on:off requests/s went from 0.926 (logged before sending) to 0.953,
    24 rotating rounds of 2 s (2026-12-02). The call is made as Starlette calls the
    task, which then awaits an awaitable that is already done: no coroutine per request.
    """

    def __init__(self, call: Callable[..., None], args: tuple[Any, ...]) -> None:
        # not BackgroundTask.__init__: it inspects the callable, a cost on every request
        self.call, self.args = call, args

    def __call__(self) -> _Done:  # type: ignore[override]
        self.call(*self.args)
        return _DONE


class _Done:
    """An awaitable that is already done (awaiting it returns None at once)."""

    def __await__(self) -> Iterator[None]:
        return iter(())


_DONE = _Done()


async def read_body(request: Request, limit: int) -> bytes:
    """Return the request body; ``InvalidInput`` once it is declared or streams past ``limit``."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise InvalidInput(f"the request body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _health(ok: bool) -> Response:
    """The protocol's health answer: the status is the boolean (200 true, 400 false)."""
    return Response(status_code=200 if ok else 400)


def _error(exc: KeelError, *, keel_shape: bool) -> Response:
    headers = None
    if isinstance(exc, Overloaded):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    body = exc.to_dict() if keel_shape else {"error": exc.message}
    return _json(body, exc.http_status, headers)


def create_app(
    service: ModelService,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    grpc_address: tuple[str, int] | None = None,
    prediction_log: PredictionLogger | None = None,
    deployment: str | None = None,
) -> Starlette:
    """Return the ASGI app serving ``service``; the batcher stops with the app.

    With ``grpc_address`` the app's startup also starts ``keel.serving.grpc_server`` on it,
    feeding the same batcher on the same event loop; it stops with the app. With
    ``prediction_log`` every prediction request (OIP infer, ``/invocations``, gRPC
    ModelInfer), answered or failed, is recorded under ``deployment`` (default: the
    model's name) once its response is sent; the logger is flushed and closed with the
    app. Every prediction answer
    carries its request id in ``Keel-Request-Id`` (and OIP's body ``id``): the request's
    own ``id``, else the header of that name the caller sent, else a new one.
    """
    from .service import InferTrace

    meter = ServingMetrics(service)
    log = prediction_log

    def guarded(route: str, handler: Handler, *, keel_shape: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except KeelError as exc:
                response = _error(exc, keel_shape=keel_shape)
            except Exception:  # noqa: BLE001 - logged; the caller sees no traceback
                _log.exception("unexpected error on %s", route)
                response = _error(KeelError("internal server error"), keel_shape=keel_shape)
            meter.observe(route, response.status_code, time.perf_counter() - started)
            return response

        return endpoint

    def predicting(
        route: str,
        handler: Callable[[Request, InferTrace, list[str]], Awaitable[Response]],
        *,
        keel_shape: bool = False,
    ) -> Handler:
        """``guarded`` for a prediction route: request id in and out, and the log."""
        from keel.monitoring.prediction_serving import (
            deployment_name,
            log_served,
            now_ms,
            request_id_of,
        )

        async def endpoint(request: Request) -> Response:
            started, arrived = time.perf_counter(), now_ms()
            trace = InferTrace()
            # the handler replaces it with the OIP body's id once the body is read
            rid = [request_id_of(request.headers.get(REQUEST_ID_HEADER))]
            error: str | None = None
            try:
                response = await handler(request, trace, rid)
            except KeelError as exc:
                response, error = _error(exc, keel_shape=keel_shape), exc.message
            except Exception as exc:  # noqa: BLE001 - logged; the caller sees no traceback
                _log.exception("unexpected error on %s", route)
                response = _error(KeelError("internal server error"), keel_shape=keel_shape)
                error = f"{type(exc).__name__}: {exc}"
            elapsed = time.perf_counter() - started
            meter.observe(route, response.status_code, elapsed)
            response.headers[REQUEST_ID_HEADER] = rid[0]
            if log is not None and response.status_code != 404:  # 404: not this model's
                runtime = trace.runtime or service.runtime
                name = deployment or deployment_name(runtime.name if runtime else None)
                args = (log, name, rid[0], arrived, elapsed * 1000, response.status_code, error,
                        None, None, runtime, trace.prepared, trace.results)  # fmt: skip
                if response.background is None:
                    response.background = _AfterSend(log_served, args)
                else:
                    log_served(*args)
            return response

        return endpoint

    async def body(request: Request) -> bytes:
        return await read_body(request, max_body_bytes)

    def target(request: Request) -> tuple[str, str | None]:
        return request.path_params["name"], request.path_params.get("version")

    async def server_metadata(request: Request) -> Response:
        return _json(asdict(service.server_metadata()))

    async def live(request: Request) -> Response:
        return _health(service.server_live())

    async def ready(request: Request) -> Response:
        return _health(service.server_ready())

    async def model_metadata(request: Request) -> Response:
        return _json(asdict(service.model_metadata(*target(request))))

    async def model_ready(request: Request) -> Response:
        return _health(service.model_ready(*target(request)))

    async def infer(request: Request, trace: InferTrace, rid: list[str]) -> Response:
        from keel.monitoring.prediction_serving import request_id_of

        name, version = target(request)
        service.model_ready(name, version)  # an unknown model is 404 before the body is read
        raw = await body(request)
        json_part, binary = split_body(raw, request.headers.get(HEADER_LENGTH))
        doc = parse_json(json_part)
        if isinstance(doc, dict) and doc.get("id") is not None:  # known even if decoding fails
            rid[0] = request_id_of(doc["id"])
        decoded = decode_request(doc, binary)
        result = await service.infer(name, version, decoded, trace)
        result.id = rid[0]
        binary_outputs = _binary_outputs(decoded, result)
        header, blob = encode_response(result, binary_outputs)
        if not binary_outputs:
            return Response(header, media_type="application/json")
        return Response(
            header + blob,
            media_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(len(header))},
        )

    async def invocations(request: Request, trace: InferTrace, rid: list[str]) -> Response:
        from .mlflow_formats import frame_of, is_csv, read_invocation, split_matrix

        raw, content_type = await body(request), request.headers.get("content-type", "")
        if is_csv(content_type):
            predictions = await service.predict_frame(read_invocation(raw, content_type), trace)
        else:
            doc = parse_json(raw)
            rows = split_matrix(doc, raw)
            prepared = None if rows is None else service.prepare_rows(*rows)
            if prepared is None:
                predictions = await service.predict_frame(frame_of(doc), trace)
            else:
                predictions = await service.predict_prepared(prepared, trace)
        return _json({"predictions": predictions})

    async def metrics(request: Request) -> Response:
        text = meter.text() if log is None else meter.text() + log.metrics_text()
        return Response(text, headers={"Content-Type": CONTENT_TYPE})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _json({"error": f"{request.method} {request.url.path}: {status}"}, status)

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    routes = [  # matched in order: the prediction routes first
        Route(
            "/invocations",
            predicting("invocations", invocations, keel_shape=True),
            methods=["POST"],
        ),
        Route("/v2", guarded("metadata", server_metadata)),
        Route("/v2/health/live", guarded("live", live)),
        Route("/v2/health/ready", guarded("ready", ready)),
        Route("/metrics", guarded("metrics", metrics)),
    ]
    for prefix in (model, versioned):
        routes += [
            Route(prefix, guarded("model_metadata", model_metadata)),
            Route(f"{prefix}/ready", guarded("model_ready", model_ready)),
            Route(f"{prefix}/infer", predicting("infer", infer), methods=["POST"]),
        ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        # Both transports feed one batcher: infer runs on this (uvicorn's) loop.
        loop = asyncio.get_running_loop()
        grpc = None
        if log is not None:  # before the first request, not in the first flush
            await asyncio.to_thread(log.warm)
        if grpc_address is not None:
            grpc = _start_grpc(service, *grpc_address, loop, log, deployment)
        try:
            yield
        finally:
            if grpc is not None:
                grpc.stop()
            await service.close()
            if log is not None:  # after the batcher: every answered request is recorded
                await asyncio.to_thread(log.close)

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )


def _start_grpc(
    service: ModelService,
    host: str,
    port: int,
    loop: asyncio.AbstractEventLoop,
    log: PredictionLogger | None = None,
    deployment: str | None = None,
) -> Any:
    """Start the gRPC transport, or warn (REST only) when the grpc extra is missing."""
    try:
        from .grpc_server import start_grpc_server

        handle = start_grpc_server(
            service, host, port, service_loop=loop, prediction_log=log, deployment=deployment
        )
    except ImportError:  # MissingDependency is an ImportError too
        print(
            "gRPC needs the grpc extra: pip install 'keel-mlops[grpc]'; serving REST only",
            file=sys.stderr,
        )
        return None
    return handle


def app_from_env() -> Starlette:
    """The app a uvicorn worker process builds (``keel serve --workers N``), from env vars."""
    import os

    from keel.monitoring.prediction_log import logger_from_settings
    from keel.stores import current_stores

    from .service import ModelService

    env = os.environ
    service = ModelService.from_uri(
        env["KEEL_SERVE_MODEL_URI"],
        max_batch_size=int(env.get("KEEL_SERVE_MAX_BATCH_SIZE", "128")),
        max_latency_ms=float(env.get("KEEL_SERVE_MAX_LATENCY_MS", "1")),
        max_queue=int(env.get("KEEL_SERVE_MAX_QUEUE", "1024")),
        batching=env.get("KEEL_SERVE_BATCHING", "true") == "true",
    )
    service.load()
    enabled = env.get("KEEL_SERVE_LOG_PREDICTIONS")
    rate = env.get("KEEL_SERVE_LOG_SAMPLE_RATE")
    log = logger_from_settings(
        current_stores(),
        enabled=None if enabled is None else enabled == "true",
        sample_rate=None if rate is None else float(rate),
    )
    return create_app(service, prediction_log=log)


def _binary_outputs(request: InferenceRequest, response: InferenceResponse) -> set[str]:
    """Outputs to send binary: per-output ``binary_data``, else ``binary_data_output``."""
    default = bool(request.parameters.get("binary_data_output", False))
    chosen = {o.name: bool(o.parameters.get("binary_data", default)) for o in request.outputs}
    return {t.name for t in response.outputs if chosen.get(t.name, default)}
