"""``keel bundle``: write a registered model as a self-contained offline folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._output import JsonOption, out_console, print_json

__all__ = ["bundle"]


def bundle(
    model_uri: Annotated[str, typer.Argument(help="models:/name/3, models:/name@alias, …")],
    out_dir: Annotated[Path, typer.Argument(help="A new (or empty) folder to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty folder.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Write MODEL_URI, its signature, pinned requirements and serve.py into OUT_DIR."""
    from keel.serving.bundle import bundle_model

    report = bundle_model(model_uri, out_dir, force=force)
    if as_json:
        print_json(report.to_dict())
        return
    out_console().print(
        f"wrote {report.path} ({report.flavor}, {len(report.files)} files, "
        f"{report.size_bytes:,} bytes); run: python {report.path / 'serve.py'} predict INPUT",
        markup=False,
        soft_wrap=True,
    )
