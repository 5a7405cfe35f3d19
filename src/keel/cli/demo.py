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
    """Run the lifecycle demo: train candidates, track, compare, register, set champion."""
    from keel.demo import run_demo

    result = run_demo(home)
    if serve:
        _serve(result.home, port)


def _serve(home: Path, port: int) -> None:
    from keel.config import load_settings
    from keel.server import create_app
    from keel.server.serving import serving

    with serving(create_app(settings=load_settings(home)), port=port) as url:
        typer.echo(f"\nKeel server for the demo: {url}  (API docs: {url}/docs)  Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopping the server")
