"""``keel export onnx``: convert a registered scikit-learn model to ONNX and check it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from keel.cli._output import JsonOption, Table, out_console, print_json
from keel.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(help="Export registered models to other formats.", no_args_is_help=True)

MAX_CHECK_ROWS = 10_000


@app.command("onnx")
def onnx(
    model_uri: Annotated[str, typer.Argument(help="models:/name/3, models:/name@alias, …")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the .onnx file.")
    ] = None,
    quantize: Annotated[
        bool, typer.Option("--quantize", help="Dynamic int8 quantisation of the weights.")
    ] = False,
    register: Annotated[
        str | None, typer.Option("--register", help="Register the ONNX model under this name.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="A .parquet/.csv file to check against (first 10,000 rows)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Convert MODEL_URI with skl2onnx; report size, latency and the largest difference."""
    from keel.serving.export import export_onnx

    rows = None if data is None else _read_rows(data)
    report = export_onnx(
        model_uri, output, quantize=quantize, data=rows, register=register, overwrite=force
    )
    if as_json:
        print_json(report.to_dict())
        return
    table = Table(title=f"{model_uri} → {report.path}", title_justify="left", box=None)
    table.add_column("")
    table.add_column("original", kind="number")
    table.add_column("onnx", kind="number")
    for key, label in (
        ("1_row", "latency, 1 row"),
        ("batch", f"latency, {report.batch_rows} rows"),
    ):
        table.add_row(
            label,
            f"{report.original_latency_ms[key]:.3f} ms",
            f"{report.onnx_latency_ms[key]:.3f} ms",
        )
    console = out_console()
    console.print(table)
    size = f"{report.size_bytes:,} bytes"
    if report.quantized:
        size += f" (quantised from {report.unquantized_size_bytes:,})"
    elif quantize:
        size += " (nothing to quantise: no MatMul/Gemm in the graph)"
    console.print(f"size: {size}; opset {report.opset}", markup=False)
    mismatch = (
        "" if report.label_mismatches is None else f", {report.label_mismatches} labels differ"
    )
    console.print(
        f"largest {report.compared} difference over {report.rows_compared} rows: "
        f"{report.max_abs_difference:.3g}{mismatch}",
        markup=False,
    )
    if report.registered_uri:
        console.print(f"registered {report.registered_uri}", markup=False)


def _read_rows(path: Path) -> Any:
    import pyarrow as pa

    if not path.is_file():
        raise InvalidInput(f"--data {path} does not exist or is not a file")
    try:
        if path.suffix.lower() == ".csv":
            import pandas as pd

            return pd.read_csv(path, nrows=MAX_CHECK_ROWS)
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(path)
        batch = next(reader.iter_batches(batch_size=MAX_CHECK_ROWS), None)
        if batch is None:
            raise InvalidInput(f"--data {path} has no rows")
        return batch.to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(
            f"cannot read --data {path}: {' '.join(str(exc).split())[:200]}"
        ) from None
