"""``keel predict batch``: stream a Parquet/CSV file through a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._output import JsonOption, err_console, out_console, print_json

__all__ = ["app"]

app = typer.Typer(help="Predict with registered models.", no_args_is_help=True)


@app.command("batch")
def batch(
    model_uri: Annotated[str, typer.Argument(help="models:/name/3, models:/name@alias, …")],
    input_path: Annotated[Path, typer.Argument(help="Input .parquet or .csv file.")],
    output_path: Annotated[Path, typer.Argument(help="Output .parquet (or .csv) file.")],
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", help="Rows per chunk (bounds memory).")
    ] = 50_000,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker processes (default: one per CPU).")
    ] = None,
    engine: Annotated[str, typer.Option("--engine", help="local (process pool) or ray.")] = "local",
    columns: Annotated[
        str | None,
        typer.Option("--columns", help="Comma-separated input columns the model reads, in order."),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Input column to copy into the output (repeatable)."),
    ] = None,
    no_proba: Annotated[
        bool, typer.Option("--no-proba", help="Leave out probability_<class> columns.")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Predict every row of INPUT_PATH; write predictions to OUTPUT_PATH (atomically)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from keel.serving.batch import predict_batch

    options = {
        "chunk_rows": chunk_rows,
        "workers": workers,
        "engine": engine,
        "columns": None if columns is None else [c.strip() for c in columns.split(",")],
        "keep_columns": keep or (),
        "probabilities": not no_proba,
        "overwrite": force,
    }
    if as_json:
        report = predict_batch(model_uri, input_path, output_path, **options)  # type: ignore[arg-type]
        print_json(report.to_dict())
        return
    columns = (
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(),
    )  # fmt: skip
    with Progress(*columns, console=err_console(), transient=True) as bar:
        task = bar.add_task("rows", total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        report = predict_batch(
            model_uri,
            input_path,
            output_path,
            progress=update,
            **options,  # type: ignore[arg-type]
        )
    out_console().print(
        f"wrote {report.rows:,} rows to {report.output_path} in {report.seconds:.1f}s "
        f"({report.chunks} chunks, {report.workers} {report.engine} worker"
        f"{'s' if report.workers != 1 else ''}); columns: {', '.join(report.columns)}",
        markup=False,
        soft_wrap=True,
    )
