"""Dataset inputs: a digest, schema and compact profile of data a run consumed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput
from keel.tracking.entities import DatasetInput
from keel.tracking.validation import check_name

__all__ = ["dataset_input", "digest_path"]

_CHUNK = 1 << 20


def digest_path(path: Path) -> str:
    """Return the BLAKE3 digest of a file, or of a folder's sorted (path, digest) list."""
    import blake3

    if path.is_file():
        hasher = blake3.blake3()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
        return hasher.hexdigest()
    if path.is_dir():
        hasher = blake3.blake3()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = child.relative_to(path).as_posix()
            hasher.update(f"{rel}\0{digest_path(child)}\n".encode())
        return hasher.hexdigest()
    raise InvalidInput(f"dataset path {str(path)!r} does not exist")


def _frame_facts(frame: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    import blake3
    import pandas as pd

    hasher = blake3.blake3()
    columns = [str(c) for c in frame.columns]
    schema = {
        "columns": {
            c: str(frame[col].dtype) for c, col in zip(columns, frame.columns, strict=False)
        }
    }
    hasher.update(repr(sorted(schema["columns"].items())).encode())
    # Vectorised per-row hashes (index included), then one BLAKE3 over them.
    hasher.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    numeric = frame.select_dtypes("number")
    profile: dict[str, Any] = {
        "rows": len(frame),
        "columns": len(columns),
        "missing": {str(k): int(v) for k, v in frame.isna().sum().items()},
    }
    if not numeric.empty and len(frame):
        stats = numeric.agg(["min", "max", "mean"])
        profile["numeric"] = {
            str(col): {k: float(stats.at[k, col]) for k in ("min", "max", "mean")}
            for col in numeric.columns
        }
    reference = _reference_profile(frame)
    if reference is not None:
        profile["reference"] = reference
    return hasher.hexdigest(), schema, profile


def _reference_profile(frame: Any) -> dict[str, Any] | None:
    """The drift reference (``keel.monitoring`` profile), so monitoring needs no raw rows.

    Smaller than the monitoring default (101 quantiles, 200 categories a column) because
    it is stored with every logged dataset. None for frames it cannot describe.
    """
    from keel.monitoring import profile as reference_profile

    if len(frame) == 0:
        return None
    try:
        return reference_profile(frame, quantiles=101, max_categories=200).to_dict()
    except InvalidInput:  # repeated column names: the run still logs the dataset
        return None


def _array_facts(array: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    import blake3
    import numpy as np

    contiguous = np.ascontiguousarray(array)
    if contiguous.dtype == object:
        raise InvalidInput("object arrays cannot be digested; convert to a numeric dtype")
    hasher = blake3.blake3()
    hasher.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
    hasher.update(memoryview(contiguous).cast("B"))
    schema = {"dtype": str(contiguous.dtype), "shape": list(contiguous.shape)}
    return hasher.hexdigest(), schema, {"rows": int(contiguous.shape[0]) if contiguous.ndim else 1}


def dataset_input(
    data: Any,
    *,
    name: str | None = None,
    context: str = "training",
    source: str | None = None,
) -> DatasetInput:
    """Return a ``DatasetInput`` for a DataFrame, ndarray, or file/folder path."""
    context = check_name("dataset context", context)
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        digest = digest_path(path)
        schema: dict[str, Any] | None = None
        profile: dict[str, Any] | None = {"bytes": _size(path)}
        name = path.name if name is None else name
        source = source or path.resolve().as_uri()
    else:
        kind = type(data).__module__.split(".")[0]
        if kind == "pandas" and hasattr(data, "columns"):
            digest, schema, profile = _frame_facts(data)
        elif kind == "pandas" and hasattr(data, "to_frame"):
            digest, schema, profile = _frame_facts(data.to_frame())
        elif kind == "numpy":
            digest, schema, profile = _array_facts(data)
        else:
            raise InvalidInput(
                f"cannot log a dataset from {type(data).__name__}; pass a pandas DataFrame, "
                "a numpy array or a path"
            )
        name = "dataset" if name is None else name
    return DatasetInput(
        name=check_name("dataset", name),
        digest=digest,
        source=source,
        context=context,
        schema=schema,
        profile=profile,
    )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
