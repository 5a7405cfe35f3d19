"""Batch inference: a Parquet or CSV file in, predictions streamed to Parquet (or CSV) out.

:func:`predict_batch` reads the input in chunks of ``chunk_rows`` (Parquet through
``ParquetFile.iter_batches``, reading only the columns it needs; CSV through
``pyarrow.csv.open_csv``), predicts each chunk with the registered model (its signature
enforced), and appends the results to the output with an incremental writer. At most
``2 × workers`` chunks are in flight, so memory stays bounded whatever the file's size, and
output rows keep the input's order.

The output holds, per input row: the ``keep_columns`` copied from the input, then
``prediction`` (``prediction_<i>`` for a 2-D output, the model's own names for a DataFrame
output), then ``probability_<class>`` for each class when the model has ``predict_proba``
and ``probabilities`` is true.

Engines: ``"local"`` predicts in this process (one worker) or in a pool of spawned
processes (several), each loading the model once after verifying its digests; ``"ray"``
does the same with Ray actors on a connected cluster (or a local one started for the job;
the ``ray`` extra). The output is written to a temporary name in the output's folder and
renamed when complete: a failure leaves no output file.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import InvalidInput, KeelError, SchemaError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BatchReport", "predict_batch"]

DEFAULT_CHUNK_ROWS = 50_000
MAX_CHUNK_ROWS = 10_000_000
MAX_WORKERS = 256
ENGINES = ("local", "ray")
_SHOWN = 12  # column names listed in an error message


@dataclass(frozen=True)
class BatchReport:
    """What one batch job did."""

    output_path: Path
    rows: int
    chunks: int
    engine: str
    workers: int
    columns: tuple[str, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able data."""
        return {
            "output_path": str(self.output_path),
            "rows": self.rows,
            "chunks": self.chunks,
            "engine": self.engine,
            "workers": self.workers,
            "columns": list(self.columns),
            "seconds": round(self.seconds, 3),
        }


def predict_batch(
    model_uri: str,
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int | None = None,
    engine: Literal["local", "ray"] = "local",
    columns: Sequence[str] | None = None,
    keep_columns: Sequence[str] = (),
    probabilities: bool = True,
    overwrite: bool = False,
    progress: Callable[[int, int | None], None] | None = None,
    ray_address: str | None = None,
) -> BatchReport:
    """Predict every row of ``input_path`` with ``model_uri``; write ``output_path``.

    ``columns`` names the input columns the model reads, in order (default: the
    signature's columns, or every column but ``keep_columns`` for a model with a tensor
    signature or none).
    ``workers`` defaults to one per CPU (at most one per chunk); ``progress(rows_done,
    total_rows)`` is called after each chunk is written (``total_rows`` is None for CSV).
    """
    from keel.registry.packaging import read_model_info

    from ._model_files import model_files

    started = time.perf_counter()
    chunk_rows = _check_int("chunk_rows", chunk_rows, MAX_CHUNK_ROWS)
    if workers is not None:
        workers = _check_int("workers", workers, MAX_WORKERS)
    if engine not in ENGINES:
        raise InvalidInput(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    source_path, target = _check_paths(input_path, output_path, overwrite=overwrite)
    keep = _check_names("keep_columns", keep_columns)
    files = model_files(model_uri)
    info = read_model_info(files.folder)
    source = _Source(source_path, chunk_rows)
    features = _features(info.signature, columns, source.names, source_path, keep)
    missing = [c for c in keep if c not in source.names]
    if missing:
        raise SchemaError(f"{source_path.name} has no column {missing[0]!r} to keep")
    tensor = info.signature is None or info.signature.inputs.kind == "tensor"
    chunks = source.chunks_estimate()
    if workers is None and engine == "local":
        workers = os.cpu_count() or 1
    if workers is not None and chunks is not None:
        workers = max(1, min(workers, chunks))  # no idle worker for a small file
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    job = _Job(source, features, keep, tmp, target.suffix.lower() == ".csv", progress)
    try:
        runner = _engine(engine, files, workers, tensor, probabilities, ray_address)
        try:
            job.run(runner)
        except BaseException:
            runner.close(cancel=True)
            raise
        runner.close()
        job.close()  # a Parquet file is complete only once its footer is written
        os.replace(tmp, target)
    finally:
        job.close()
        tmp.unlink(missing_ok=True)
    return BatchReport(
        output_path=target,
        rows=job.rows,
        chunks=job.chunks,
        engine=engine,
        workers=runner.workers,
        columns=job.columns,
        seconds=time.perf_counter() - started,
    )


def _engine(
    engine: str,
    files: Any,
    workers: int | None,
    tensor: bool,
    probabilities: bool,
    address: str | None,
) -> Any:
    from ._batch_engines import InlineEngine, ProcessEngine, RayEngine

    if engine == "ray":
        return RayEngine(
            files, workers=workers, tensor=tensor, probabilities=probabilities, address=address
        )
    if workers == 1:
        return InlineEngine(files, tensor=tensor, probabilities=probabilities)
    return ProcessEngine(files, workers=workers or 1, tensor=tensor, probabilities=probabilities)


class _Source:
    """The input file, read as record batches of at most ``chunk_rows`` rows."""

    def __init__(self, path: Path, chunk_rows: int) -> None:
        import pyarrow as pa

        self.path = path
        self.chunk_rows = chunk_rows
        self.csv = path.suffix.lower() == ".csv"
        try:
            if self.csv:
                self.total_rows: int | None = None
                self.schema = self._open_csv().schema
            else:
                import pyarrow.parquet as pq

                # Without pre-buffering, iter_batches holds about one row group's pages, not
                # every row group it will read (pre_buffer=True reads the file ahead).
                self._parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
                self.total_rows = self._parquet.metadata.num_rows
                self.schema = self._parquet.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            kind = "CSV" if self.csv else "Parquet"
            raise InvalidInput(f"cannot read {path} as {kind}: {_one_line(exc)}") from None
        self.names = tuple(self.schema.names)

    def _open_csv(self) -> Any:
        import pyarrow.csv as pcsv

        return pcsv.open_csv(self.path, read_options=pcsv.ReadOptions(block_size=1 << 22))

    def chunks_estimate(self) -> int | None:
        if self.total_rows is None:
            return None
        return -(-self.total_rows // self.chunk_rows)

    def batches(self, wanted: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """Yield record batches of the ``wanted`` columns, in file order."""
        if not self.csv:
            yield from self._parquet.iter_batches(batch_size=self.chunk_rows, columns=wanted)
            return
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        size = 0
        for block in self._open_csv():
            batch = block.select(list(wanted))
            pending.append(batch)
            size += batch.num_rows
            while size >= self.chunk_rows:
                table = pa.Table.from_batches(pending)
                yield from table.slice(0, self.chunk_rows).combine_chunks().to_batches()
                rest = table.slice(self.chunk_rows)
                pending, size = rest.to_batches(), rest.num_rows
        if size:
            yield from pa.Table.from_batches(pending).combine_chunks().to_batches()

    def empty(self, wanted: Sequence[str]) -> pa.RecordBatch:
        """Return a zero-row batch of the ``wanted`` columns."""
        import pyarrow as pa

        schema = pa.schema([self.schema.field(name) for name in wanted])
        return pa.RecordBatch.from_pylist([], schema=schema)


class _Job:
    """The chunk loop: read, submit (bounded, ordered), write."""

    def __init__(
        self,
        source: _Source,
        features: list[str],
        keep: list[str],
        tmp: Path,
        csv: bool,
        progress: Callable[[int, int | None], None] | None,
    ) -> None:
        self.source, self.features, self.keep, self.tmp, self.csv = source, features, keep, tmp, csv
        self.progress = progress
        self.rows = self.chunks = 0
        self.columns: tuple[str, ...] = ()
        self._writer: Any = None
        self._schema: pa.Schema | None = None

    def run(self, engine: Any) -> None:
        import pyarrow as pa

        wanted = list(dict.fromkeys([*self.features, *self.keep]))
        limit = 2 * max(1, engine.workers)
        pending: deque[tuple[pa.RecordBatch, int, Any]] = deque()
        start = 0
        try:
            for batch in self.source.batches(wanted):
                if batch.num_rows == 0:
                    continue
                pending.append((batch, start, engine.submit(batch.select(self.features))))
                start += batch.num_rows
                if len(pending) >= limit:
                    self._write(engine, *pending.popleft())
        except pa.ArrowException as exc:
            raise InvalidInput(
                f"cannot read {self.source.path} past row {start}: {_one_line(exc)}"
            ) from None
        while pending:
            self._write(engine, *pending.popleft())
        if self._writer is None:  # an empty input: an empty output with the same columns
            empty = self.source.empty(wanted)
            self._write(engine, empty, 0, engine.submit(empty.select(self.features)))

    def _write(self, engine: Any, batch: pa.RecordBatch, start: int, handle: Any) -> None:
        import pyarrow as pa

        end = start + batch.num_rows - 1
        try:
            predicted = engine.result(handle)
        except KeelError as exc:
            raise type(exc)(f"rows {start}–{end}: {exc.message}") from exc
        except Exception as exc:
            raise InvalidInput(
                f"rows {start}–{end}: the model failed with {type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        table = pa.Table.from_batches([batch.select(self.keep)]) if self.keep else None
        if table is None:
            table = predicted
        else:
            for name in predicted.column_names:
                if name in self.keep:
                    raise InvalidInput(f"kept input column {name!r} clashes with a model output")
                table = table.append_column(name, predicted.column(name))
        if self._writer is None:
            self._open(table.schema)
        try:
            table = table.cast(self._schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise InvalidInput(
                f"rows {start}–{end}: the model's output types changed from the first chunk's "
                f"({_one_line(exc)})"
            ) from None
        self._writer.write_table(table)
        self.rows += batch.num_rows
        self.chunks += 1 if batch.num_rows else 0
        if self.progress is not None:
            self.progress(self.rows, self.source.total_rows)

    def _open(self, schema: pa.Schema) -> None:
        self._schema = schema
        self.columns = tuple(schema.names)
        if self.csv:
            import pyarrow.csv as pcsv

            self._writer = pcsv.CSVWriter(str(self.tmp), schema)
        else:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(str(self.tmp), schema, compression="zstd")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _features(
    signature: Any,
    columns: Sequence[str] | None,
    names: Sequence[str],
    path: Path,
    keep: Sequence[str],
) -> list[str]:
    if columns is not None:
        wanted = _check_names("columns", columns)
        if not wanted:
            raise InvalidInput("columns must name at least one input column")
    elif signature is not None and signature.inputs.kind == "dataframe":
        optional = {c.name for c in signature.inputs.columns if c.optional}
        wanted = [n for n in signature.inputs.names if n in names or n not in optional]
    else:  # a tensor (or unsigned) model reads every column it is not told to keep aside
        wanted = [n for n in names if n not in keep]
    missing = [c for c in wanted if c not in names]
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (" …" if len(missing) > _SHOWN else "")
        has = ", ".join(names[:_SHOWN]) + (" …" if len(names) > _SHOWN else "")
        raise SchemaError(
            f"{path.name} lacks column(s) the model needs: {shown}; it has: {has or '(none)'}"
        )
    if not wanted:
        raise InvalidInput(f"{path.name} has no columns")
    return wanted


def _check_paths(
    input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *, overwrite: bool
) -> tuple[Path, Path]:
    for label, value in (("input", input_path), ("output", output_path)):
        if not isinstance(value, str | os.PathLike) or not str(value).strip():
            raise InvalidInput(f"the {label} path must be a non-empty path, not {value!r}")
    source, target = Path(input_path), Path(output_path)
    if not source.is_file():
        state = "is not a file" if source.exists() else "does not exist"
        raise InvalidInput(f"input {source} {state}")
    if not target.parent.is_dir():
        raise InvalidInput(f"output folder {target.parent} does not exist")
    if target.exists() and target.resolve() == source.resolve():
        raise InvalidInput("the output path is the input file; choose another output")
    if target.is_dir():
        raise InvalidInput(f"output {target} is a folder; name a file")
    if target.exists() and not overwrite:
        raise InvalidInput(f"output {target} already exists; pass overwrite=True (--force)")
    return source, target


def _check_int(name: str, value: object, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidInput(f"{name} must be an integer from 1 to {most:,}, not {value!r}")
    return value


def _check_names(label: str, names: object) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise InvalidInput(f"{label} must be a list of column names, not {names!r}")
    if not all(isinstance(n, str) and n for n in names):
        raise InvalidInput(f"{label} must hold non-empty column names")
    return list(dict.fromkeys(names))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"
