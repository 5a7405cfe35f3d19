"""``keel serve MODEL_URI``: one registered model over the Open Inference Protocol v2.

REST on ``--port`` (``/v2/...`` as KServe and Triton define it, plus MLflow's
``/invocations``) and, with ``--grpc-port``, gRPC too (``keel.serving.grpc_server``, the
``grpc`` extra). The version is loaded (digests verified) and warmed on its input example
before the port opens, so a version that fails either never receives traffic. Binding a
non-loopback address needs ``--insecure``: the model server has no authentication. Every
prediction request is recorded in the prediction log (``keel.monitoring.prediction_log``)
unless ``--no-log-predictions`` (or the ``prediction_log`` setting) turns it off;
``--log-sample-rate`` keeps the inputs of that share of requests.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from keel.errors import InvalidInput

__all__ = ["serve"]


def serve(
    model_uri: Annotated[
        str, typer.Argument(help="models:/<name>@<alias>, models:/<name>/<version> or runs:/…")
    ],
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless told otherwise.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="REST port.")] = 8080,
    grpc_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Also serve gRPC on this port (grpc extra)."),
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option(min=1, help="Rows merged into one predict call at most.")
    ] = 128,
    max_latency_ms: Annotated[
        float, typer.Option(min=0, help="How long a batch waits for more requests.")
    ] = 1.0,
    max_queue: Annotated[
        int, typer.Option(min=1, help="Requests waiting at most; beyond it, 503 Retry-After.")
    ] = 1024,
    batching: Annotated[
        bool, typer.Option("--batching/--no-batching", help="Merge concurrent requests.")
    ] = True,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    insecure: Annotated[
        bool, typer.Option(help="Allow binding a non-loopback address (no authentication).")
    ] = False,
    log_predictions: Annotated[
        bool | None,
        typer.Option(
            "--log-predictions/--no-log-predictions",
            help="Record every request in the prediction log (default: prediction_log setting).",
        ),
    ] = None,
    log_sample_rate: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of requests whose inputs are logged (default: the setting, 1).",
        ),
    ] = None,
) -> None:
    """Serve a model version: Open Inference Protocol v2 (REST, gRPC) and /invocations."""
    import uvicorn

    from keel.cli.server import is_loopback
    from keel.registry.uris import parse_model_uri
    from keel.serving import _uvicorn
    from keel.serving.rest import create_app
    from keel.serving.service import ModelService

    parse_model_uri(model_uri)
    if not is_loopback(host) and not insecure:
        raise InvalidInput(
            f"binding {host} would expose an unauthenticated model server to the network; "
            "bind 127.0.0.1 (behind your own proxy), or pass --insecure if you really mean it"
        )
    if workers > 1 and grpc_port is not None:
        raise InvalidInput("--grpc-port needs --workers 1 (one process serves both transports)")
    if not is_loopback(host):
        typer.secho(f"warning: serving {host}:{port} WITHOUT authentication", err=True, fg="red")
    options = {
        "max_batch_size": max_batch_size,
        "max_latency_ms": max_latency_ms,
        "max_queue": max_queue,
        "batching": batching,
    }
    service = ModelService.from_uri(model_uri, **options)
    service.load()  # load and warm before any port opens; a failure exits here
    log = _prediction_log(log_predictions, log_sample_rate) if workers == 1 else None
    runtime = service.runtime
    label = f"{runtime.name}/{runtime.version}" if runtime is not None else model_uri
    typer.echo(f"serving {label} on http://{host}:{port}/v2  (MLflow: /invocations)")
    if grpc_port is not None:
        typer.echo(f"gRPC on {host}:{grpc_port}")
    batch_text = f"max {max_batch_size} rows, {max_latency_ms:g} ms" if batching else "off"
    typer.echo(f"batching: {batch_text}; queue: {max_queue} requests")
    if workers == 1:
        if log is not None:
            typer.echo(f"prediction log: {log.root.url}, inputs of {log.sample_rate:.0%}")
        grpc_address = None if grpc_port is None else (host, grpc_port)
        app = create_app(service, grpc_address=grpc_address, prediction_log=log)
        uvicorn.Server(_uvicorn.config(app, host=host, port=port)).run()
        return
    os.environ.update(
        {
            "KEEL_SERVE_MODEL_URI": model_uri,
            "KEEL_SERVE_MAX_BATCH_SIZE": str(max_batch_size),
            "KEEL_SERVE_MAX_LATENCY_MS": str(max_latency_ms),
            "KEEL_SERVE_MAX_QUEUE": str(max_queue),
            "KEEL_SERVE_BATCHING": "true" if batching else "false",
        }
    )
    if log_predictions is not None:
        os.environ["KEEL_SERVE_LOG_PREDICTIONS"] = "true" if log_predictions else "false"
    if log_sample_rate is not None:
        os.environ["KEEL_SERVE_LOG_SAMPLE_RATE"] = repr(log_sample_rate)
    uvicorn.run(
        "keel.serving.rest:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=_uvicorn.NoDelayHTTPProtocol,
        log_level="warning",
        access_log=False,
    )


def _prediction_log(enabled: bool | None, sample_rate: float | None) -> Any:
    """The prediction logger the flags and settings ask for (None: off)."""
    from keel.monitoring.prediction_log import logger_from_settings
    from keel.stores import current_stores

    return logger_from_settings(current_stores(), enabled=enabled, sample_rate=sample_rate)
