"""``keel demo``: run the end-to-end lifecycle demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo"]


def demo(
    home: Annotated[
        Path | None,
        typer.Option(help="Keel home to run the demo in (default: a new temporary one)."),
    ] = None,
) -> None:
    """Run the lifecycle demo: train candidates, track, compare, register, set champion."""
    from keel.demo import run_demo

    run_demo(home)
