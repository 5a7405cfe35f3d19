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
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keel.errors import InvalidInput, KeelError, Overloaded

from ._metrics import CONTENT_TYPE, ServingMetrics
from .codec_binary import HEADER_LENGTH, split_body
from .codec_json import decode_request, encode_response, parse_json
from .protocol import InferenceRequest, InferenceResponse

if TYPE_CHECKING:
    from .service import ModelService

__all__ = ["MAX_BODY_BYTES", "app_from_env", "create_app", "read_body"]

MAX_BODY_BYTES = 256 * 1024 * 1024
_log = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]


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
) -> Starlette:
    """Return the ASGI app serving ``service``; the batcher stops with the app.

    With ``grpc_address`` the app's startup also starts ``keel.serving.grpc_server`` on it,
    feeding the same batcher on the same event loop; it stops with the app.
    """
    meter = ServingMetrics(service)

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

    async def infer(request: Request) -> Response:
        name, version = target(request)
        service.model_ready(name, version)  # an unknown model is 404 before the body is read
        raw = await body(request)
        json_part, binary = split_body(raw, request.headers.get(HEADER_LENGTH))
        decoded = decode_request(parse_json(json_part), binary)
        result = await service.infer(name, version, decoded)
        binary_outputs = _binary_outputs(decoded, result)
        header, blob = encode_response(result, binary_outputs)
        if not binary_outputs:
            return Response(header, media_type="application/json")
        return Response(
            header + blob,
            media_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(len(header))},
        )

    async def invocations(request: Request) -> Response:
        from .mlflow_formats import frame_of, is_csv, read_invocation, split_matrix

        raw, content_type = await body(request), request.headers.get("content-type", "")
        if is_csv(content_type):
            predictions = await service.predict_frame(read_invocation(raw, content_type))
        else:
            doc = parse_json(raw)
            rows = split_matrix(doc, raw)
            prepared = None if rows is None else service.prepare_rows(*rows)
            if prepared is None:
                predictions = await service.predict_frame(frame_of(doc))
            else:
                predictions = await service.predict_prepared(prepared)
        return _json({"predictions": predictions})

    async def metrics(request: Request) -> Response:
        return Response(meter.text(), headers={"Content-Type": CONTENT_TYPE})

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _json({"error": f"{request.method} {request.url.path}: {status}"}, status)

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    routes = [  # matched in order: the prediction routes first
        Route(
            "/invocations", guarded("invocations", invocations, keel_shape=True), methods=["POST"]
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
            Route(f"{prefix}/infer", guarded("infer", infer), methods=["POST"]),
        ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        # Both transports feed one batcher: infer runs on this (uvicorn's) loop.
        loop = asyncio.get_running_loop()
        grpc = None if grpc_address is None else _start_grpc(service, *grpc_address, loop)
        try:
            yield
        finally:
            if grpc is not None:
                grpc.stop()
            await service.close()

    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )


def _start_grpc(
    service: ModelService, host: str, port: int, loop: asyncio.AbstractEventLoop
) -> Any:
    """Start the gRPC transport, or warn (REST only) when the grpc extra is missing."""
    try:
        from .grpc_server import start_grpc_server

        handle = start_grpc_server(service, host, port, service_loop=loop)
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
    return create_app(service)


def _binary_outputs(request: InferenceRequest, response: InferenceResponse) -> set[str]:
    """Outputs to send binary: per-output ``binary_data``, else ``binary_data_output``."""
    default = bool(request.parameters.get("binary_data_output", False))
    chosen = {o.name: bool(o.parameters.get("binary_data", default)) for o in request.outputs}
    return {t.name for t in response.outputs if chosen.get(t.name, default)}
