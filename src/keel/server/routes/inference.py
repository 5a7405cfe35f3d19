"""Deployments served by ``keel server``: Open Inference Protocol v2 and MLflow scoring.

Routes (the deployment's name stands where OIP puts a model's)::

    GET  /v2/health/live | /v2/health/ready     200 true, 400 false (empty body)
    GET  /v2/models/{name}                      the deployment's model metadata
    GET  /v2/models/{name}/ready                200 ready, 400 not, 404 unknown
    POST /v2/models/{name}/infer                OIP v2 JSON, binary tensor data extension
    POST /deployments/{name}/invocations        MLflow formats → {"predictions": ...}

They decode and encode exactly as ``keel serve`` does (``keel.serving.codec_json``,
``codec_binary``, ``mlflow_formats``) and leave routing to the
:class:`~keel.deploy.router.DeploymentRouter`. An answer names the version that gave it:
``model_version`` in the OIP body and the ``Keel-Backend: model/version`` header on both.
OIP routes answer errors with the protocol's ``{"error": message}`` (400 bad input, 404
unknown deployment, 503 overloaded with ``Retry-After``); ``/invocations`` with Keel's
``{"error_code", "message"}``.

A sticky deployment (A/B test) reads its key, for an OIP request, from the request
``parameters``, else an input tensor of that name (its first element; the tensor is
dropped before the version sees it unless the version takes such an input), else the
request header; for ``/invocations`` from the header. A request without the key is
routed by weight.

With auth on, every route needs a token with the viewer role. These paths are outside
the API prefix the auth gate guards, so the route's own dependency authenticates the
token; the routes are left out of the OpenAPI schema (their bodies are protocol bytes,
not JSON models).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from keel._version import __version__
from keel.errors import InvalidInput, KeelError, Overloaded, PermissionDenied, Unauthenticated
from keel.governance.auth import Role

if TYPE_CHECKING:
    from keel.deploy.router import Answer, CallTrace, DeploymentRouter
    from keel.monitoring.prediction_log import PredictionLogger
    from keel.serving.protocol import InferenceRequest
    from keel.serving.runtime import ModelRuntime, Prepared

__all__ = ["BACKEND_HEADER", "MAX_BODY_BYTES", "REQUEST_ID_HEADER", "router", "viewer"]

MAX_BODY_BYTES = 256 * 1024 * 1024
BACKEND_HEADER = "Keel-Backend"
REQUEST_ID_HEADER = "Keel-Request-Id"
_log = logging.getLogger(__name__)


async def _viewer(request: Request) -> None:
    """With auth on, refuse a request without a valid token of at least the viewer role."""
    if not request.app.state.auth:
        return
    from keel.server.auth import authenticate, caller, token_from_request

    principal = caller(request)
    if principal is None:  # the gate guards /api only: authenticate here
        token = token_from_request(request.scope)
        if token is None:
            raise Unauthenticated(
                "this Keel server requires an API token: send 'Authorization: Bearer <token>'"
            )
        principal = await run_in_threadpool(authenticate, request.app.state.stores, token)
    if principal.best_role() < Role.VIEWER:
        raise PermissionDenied(f"{principal.user} may not call {request.url.path}: needs viewer")


_viewer.keel_role = Role.VIEWER  # type: ignore[attr-defined]


def viewer() -> Any:
    """Return the dependency every inference route declares (viewer role with auth on)."""
    from fastapi import Depends

    return Depends(_viewer)


# With auth on, the app includes this router with ``dependencies=[viewer()]``; with auth off
# it adds none, so a prediction pays nothing for the check.
router = APIRouter(tags=["inference"], include_in_schema=False)


def _plane(request: Request) -> DeploymentRouter:
    return request.app.state.deployment_router


def _json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _error(exc: KeelError, *, keel_shape: bool) -> Response:
    headers = None
    if isinstance(exc, Overloaded):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    body = exc.to_dict() if keel_shape else {"error": exc.message}
    return _json(body, exc.http_status, headers)


async def _guard(
    route: str, work: Any, *, keel_shape: bool = False, error: list[str] | None = None
) -> Response:
    """Run a handler; a KeelError becomes its status and body, anything else a bare 500
    (its message appended to ``error`` when given)."""
    try:
        return await work
    except KeelError as exc:
        if error is not None:
            error.append(exc.message)
        return _error(exc, keel_shape=keel_shape)
    except Exception as exc:  # noqa: BLE001 - logged; the caller sees no traceback
        _log.exception("unexpected error on %s", route)
        if error is not None:
            error.append(f"{type(exc).__name__}: {exc}")
        return _error(KeelError("internal server error"), keel_shape=keel_shape)


async def _body(request: Request) -> bytes:
    from keel.serving.rest import read_body

    return await read_body(request, MAX_BODY_BYTES)


def _health(ok: bool) -> Response:
    return Response(status_code=200 if ok else 400)


# -- OIP ------------------------------------------------------------------------------------


@router.get("/v2")
async def server_metadata(request: Request) -> Response:
    """Return the protocol's server metadata."""
    return _json({"name": "keel", "version": __version__, "extensions": ["binary_tensor_data"]})


@router.get("/v2/health/live")
async def live(request: Request) -> Response:
    """Answer 200: the server is up."""
    return _health(True)


@router.get("/v2/health/ready")
async def ready(request: Request) -> Response:
    """Answer 200 when every served deployment's live versions are loaded."""
    plane = _plane(request)
    return _health(all(plane.ready(name) for name in plane.deployments()))


@router.get("/v2/models/{name}")
async def model_metadata(name: str, request: Request) -> Response:
    """Return a deployment's model metadata (404 for an unknown deployment)."""

    async def work() -> Response:
        return _json(asdict(_plane(request).metadata(name)))

    return await _guard("model_metadata", work())


@router.get("/v2/models/{name}/ready")
async def model_ready(name: str, request: Request) -> Response:
    """Answer 200 when the deployment's live versions are loaded, 404 if it is unknown."""

    async def work() -> Response:
        return _health(_plane(request).ready(name))

    return await _guard("model_ready", work())


def _prediction_log(request: Request) -> PredictionLogger | None:
    """The data plane's prediction logger, made on first use from the server's stores and
    settings (None when the ``prediction_log`` setting is off or the store cannot hold it);
    the router closes it, flushing what is left, when it closes."""
    plane = _plane(request)
    state = request.app.state
    if getattr(state, "prediction_log_checked", False):
        return plane.prediction_log
    state.prediction_log_checked = True
    from keel.monitoring.prediction_log import logger_from_settings

    try:
        plane.prediction_log = logger_from_settings(state.stores, state.settings)
    except KeelError as exc:
        _log.warning("predictions are not logged: %s", exc.message)
    if plane.prediction_log is not None:
        plane.prediction_log.export_to_default_registry()
    return plane.prediction_log


async def _logged(
    name: str, request: Request, work: Any, *, keel_shape: bool = False, route: str
) -> Response:
    """Run a prediction handler ``work(trace, rid)`` under ``_guard``, answer its request
    id in ``Keel-Request-Id`` and record it (answered or failed) in the prediction log."""
    from keel.deploy.router import CallTrace
    from keel.monitoring.prediction_serving import log_served, now_ms, request_id_of

    started, arrived = time.perf_counter(), now_ms()
    trace = CallTrace()
    rid = [request_id_of(request.headers.get(REQUEST_ID_HEADER))]
    answered: list[Answer] = []
    error: list[str] = []
    response = await _guard(route, work(trace, rid, answered), keel_shape=keel_shape, error=error)
    response.headers[REQUEST_ID_HEADER] = rid[0]
    log = _prediction_log(request)
    if log is not None and response.status_code != 404:  # 404: no such deployment
        answer = answered[0] if answered and response.status_code == 200 else None
        backend = trace.backend
        log_served(
            log,
            deployment=name,
            request_id=rid[0],
            time_ms=arrived,
            latency_ms=(time.perf_counter() - started) * 1000,
            status=response.status_code,
            error=error[0] if error else None,
            model=None if backend is None else backend.model,
            version=None if backend is None else str(backend.version),
            runtime=trace.runtime,
            prepared=None if answer is None else answer.prepared,
            results=None if answer is None else answer.results,
        )
    return response


@router.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request) -> Response:
    """Predict an OIP request on the deployment's chosen version."""

    def work(trace: CallTrace, rid: list[str], answered: list[Answer]) -> Any:
        return _infer(name, request, trace, rid, answered)

    return await _logged(name, request, work, route="infer")


async def _infer(
    name: str, request: Request, trace: CallTrace, rid: list[str], answered: list[Answer]
) -> Response:
    from keel.monitoring.prediction_serving import request_id_of
    from keel.serving.codec_binary import HEADER_LENGTH, split_body
    from keel.serving.codec_json import decode_request, encode_response, parse_json

    plane = _plane(request)
    plane.table(name)  # an unknown deployment is 404 before the body is read
    raw = await _body(request)
    json_part, binary = split_body(raw, request.headers.get(HEADER_LENGTH))
    doc = parse_json(json_part)
    if isinstance(doc, dict) and doc.get("id") is not None:  # known even if decoding fails
        rid[0] = request_id_of(doc["id"])
    decoded = decode_request(doc, binary)
    sticky_key = plane.table(name).plan.sticky_key  # the same table call() reads next

    def sticky_of(key: str) -> str | None:
        return _sticky_value(key, decoded, request)

    prepare = _oip_prepare(decoded, sticky_key)
    answer = await plane.call(name, prepare, sticky_of=sticky_of, trace=trace)
    answered.append(answer)
    response = _oip_response(name, decoded, answer)
    response.id = rid[0]
    binary_outputs = _binary_outputs(decoded, response)
    header, blob = encode_response(response, binary_outputs)
    backend = {BACKEND_HEADER: answer.backend.key}
    if not binary_outputs:
        return Response(header, media_type="application/json", headers=backend)
    return Response(
        header + blob,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header)), **backend},
    )


def _oip_prepare(decoded: InferenceRequest, sticky_key: str | None) -> Any:
    """The request checked for one version; a sticky-key input it does not take is dropped."""

    def prepare(runtime: ModelRuntime) -> Prepared:
        request = decoded
        if sticky_key is not None and any(t.name == sticky_key for t in decoded.inputs):
            takes = {c.name for c in runtime.schema.columns}
            if runtime.schema.kind == "tensor":
                takes = {"input"}
            if sticky_key not in takes:
                request = replace(
                    decoded, inputs=[t for t in decoded.inputs if t.name != sticky_key]
                )
                if not request.inputs:
                    raise InvalidInput(f"the request holds only its {sticky_key!r} key, no input")
        return runtime.prepare(request)

    return prepare


def _sticky_value(key: str, decoded: InferenceRequest, request: Request) -> str | None:
    """The request's value of the sticky key: a parameter, an input, else a header."""
    value = decoded.parameters.get(key)
    if value is None:
        tensor = next((t for t in decoded.inputs if t.name == key), None)
        if tensor is not None and tensor.data.size:
            value = np.asarray(tensor.data).reshape(-1)[0]
    if value is None:
        return request.headers.get(key)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _oip_response(name: str, decoded: InferenceRequest, answer: Answer) -> Any:
    from keel.serving.protocol import InferenceResponse, Tensor, datatype_of

    results = answer.results
    outputs = [
        Tensor(n, datatype_of(results[n]), list(results[n].shape), results[n])
        for n in answer.prepared.outputs
    ]
    return InferenceResponse(
        model_name=name,
        model_version=str(answer.backend.version),
        outputs=outputs,
        id=decoded.id,
    )


def _binary_outputs(request: InferenceRequest, response: Any) -> set[str]:
    """Outputs to send binary (as keel serve): per-output ``binary_data``, else the
    request's ``binary_data_output``."""
    default = bool(request.parameters.get("binary_data_output", False))
    chosen = {o.name: bool(o.parameters.get("binary_data", default)) for o in request.outputs}
    return {t.name for t in response.outputs if chosen.get(t.name, default)}


# -- MLflow ---------------------------------------------------------------------------------


@router.post("/deployments/{name}/invocations")
async def invocations(name: str, request: Request) -> Response:
    """Predict an MLflow scoring body on the deployment's chosen version."""

    def work(trace: CallTrace, rid: list[str], answered: list[Answer]) -> Any:
        return _invocations(name, request, trace, answered)

    return await _logged(name, request, work, keel_shape=True, route="invocations")


async def _invocations(
    name: str, request: Request, trace: CallTrace, answered: list[Answer]
) -> Response:
    from keel.serving.codec_json import parse_json
    from keel.serving.mlflow_formats import frame_of, is_csv, read_invocation, split_matrix

    plane = _plane(request)
    plane.table(name)
    raw, content_type = await _body(request), request.headers.get("content-type", "")
    if is_csv(content_type):
        frame = read_invocation(raw, content_type)
        prepare: Any = lambda runtime: runtime.prepare_frame(frame)  # noqa: E731
    else:
        doc = parse_json(raw)
        rows = split_matrix(doc, raw)
        if rows is None:
            frame = frame_of(doc)  # a malformed body is refused before any version sees it
            prepare = lambda runtime: runtime.prepare_frame(frame)  # noqa: E731
        else:

            def prepare(runtime: ModelRuntime) -> Prepared:
                fast = runtime.prepare_rows(*rows)
                return fast if fast is not None else runtime.prepare_frame(frame_of(doc))

    answer = await plane.call(name, prepare, sticky_of=request.headers.get, trace=trace)
    answered.append(answer)
    predictions = answer.results["predict"]
    return _json({"predictions": _plain(predictions)}, headers={BACKEND_HEADER: answer.backend.key})


def _plain(array: np.ndarray) -> Any:
    """Predictions orjson can write: numeric arrays as they are, text decoded."""
    if array.dtype.kind in "biuf":
        return array
    flat = [
        v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        for v in array.reshape(-1).tolist()
    ]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    return out.reshape(array.shape).tolist()
