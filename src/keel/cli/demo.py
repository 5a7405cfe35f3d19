"""``keel demo``: run the end-to-end lifecycle demo (and, with --serve, look at it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo"]


def demo(
    home: Annotated[
        Path | None,
        typer.Option(help="Keel home to run the demo in (default: a new temporary one)."),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Then serve the demo's home on 127.0.0.1 until Ctrl-C."),
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port for --serve (0: any free port).")
    ] = 8750,
) -> None:
    """Run the lifecycle demo: a training pipeline, a canary, drift, rollback, retraining."""
    from keel.demo import run_demo

    result = run_demo(home)
    if serve:
        deployment = result.deployment
        _serve(result.home, port, None if deployment is None else deployment.name)


def _serve(home: Path, port: int, deployment: str | None) -> None:
    from keel.config import load_settings
    from keel.server import create_app
    from keel.serving._uvicorn import serving

    # Lifespan on: the server resumes the demo's deployment (its versions loaded and warm)
    # and serves it at /v2/models/<name>/infer, as `keel server` does.
    app = create_app(settings=load_settings(home))
    with serving(app, port=port, what="the Keel server", thread_name="keel-server") as url:
        typer.echo(f"\nKeel server for the demo: {url}  (API docs: {url}/docs)  Ctrl-C stops it")
        if deployment is not None:
            typer.echo(f"deployment page: {url}/deployments/{deployment}")
            typer.echo(f"inference:       POST {url}/v2/models/{deployment}/infer")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopping the server")
