"""Step outputs as artifacts: each value is written by its type into the blob store.

==========  ===========================================  ===========================
kind        values                                       bytes
==========  ===========================================  ===========================
``json``    None, bool, int, finite float, str, and      UTF-8 JSON
            lists / str-keyed dicts of those
``parquet`` pandas DataFrame or Series, Arrow Table      Parquet (pandas metadata
                                                         keeps the index and dtypes)
``npy``     numpy arrays of non-object dtype             ``.npy``, ``allow_pickle=False``
``model``   scikit-learn-style estimators, ONNX models   a JSON manifest of the files
                                                         the registry flavor writes
``pickle``  anything else (tuples, dataclasses, object   cloudpickle
            arrays, frames Arrow cannot hold…)
==========  ===========================================  ===========================

The fallback is cloudpickle rather than the standard pickle because it also stores what
steps commonly return and pickle refuses — lambdas, closures, classes defined in a script
or notebook — and Keel already depends on it (the ``pyfunc`` flavor). Like every Keel blob,
an output is deserialised only after its BLAKE3 digest has been verified on read.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from keel.errors import InvalidInput
from keel.pipelines.errors import StepFailed
from keel.pipelines.params import is_json_value

if TYPE_CHECKING:
    from keel.store.artifacts import Blob, BlobStore

__all__ = ["KINDS", "OutputRef", "load_output", "store_output"]

KINDS = ("json", "parquet", "npy", "model", "pickle")
_MANIFEST_FORMAT = "keel-model-files/1"


@dataclass(frozen=True)
class OutputRef:
    """Where a step's output is stored: its digest, size, kind and Python type."""

    digest: str
    size: int
    kind: str
    type: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this reference."""
        return asdict(self)

    def to_json(self) -> str:
        """Return this reference as compact JSON (how a step run's tag stores it)."""
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_json(cls, text: str) -> OutputRef:
        """Return the reference a ``to_json`` string describes; ``InvalidInput`` if malformed."""
        try:
            doc = orjson.loads(text)
            ref = cls(
                digest=doc["digest"],
                size=int(doc["size"]),
                kind=doc["kind"],
                type=doc["type"],
                meta=dict(doc.get("meta") or {}),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InvalidInput(f"malformed step output record: {text[:80]!r}") from None
        if ref.kind not in KINDS:
            raise InvalidInput(f"step output record has unknown kind {ref.kind!r}")
        return ref


def _type_name(value: Any) -> str:
    cls = type(value)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def store_output(
    value: Any, blobs: BlobStore, step: str, *, unsynced: list[str] | None = None
) -> OutputRef:
    """Return the reference of ``value`` stored in ``blobs`` by its type (table above).

    With ``unsynced`` (a list) and a local-files ``ArtifactStore``, the blobs are written
    without fsync and their digests appended to it: the caller owes their ``make_durable``
    before anything records the reference. A value that no kind can store raises
    ``StepFailed`` naming ``step`` and the reason.
    """
    kind, data, meta = _encode(value, step)
    put_bytes, put_file = _writers(blobs, unsynced)
    if kind == "model":
        return _store_model(value, put_bytes, put_file, step)
    blob = put_bytes(data)
    return OutputRef(blob.digest, blob.size, kind, _type_name(value), meta)


def _writers(blobs: BlobStore, unsynced: list[str] | None) -> tuple[Any, Any]:
    from keel.store.artifacts import ArtifactStore

    if unsynced is None or not isinstance(blobs, ArtifactStore):
        return blobs.put_bytes, blobs.put_file
    store = blobs

    def put_bytes(data: bytes) -> Blob:
        blob = store.put_bytes(data, durable=False)
        unsynced.append(blob.digest)
        return blob

    def put_file(path: Path) -> Blob:
        blob = store.put_file(path, durable=False)
        unsynced.append(blob.digest)
        return blob

    return put_bytes, put_file


def _encode(value: Any, step: str) -> tuple[str, bytes, dict[str, Any]]:
    if is_json_value(value) and type(value) is not tuple and not _has_tuple(value):
        try:
            return "json", orjson.dumps(value), {}
        except (orjson.JSONEncodeError, TypeError):
            pass  # an int beyond 64 bits nested deep: the fallback stores it
    module = type(value).__module__.partition(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            return "npy", buffer.getvalue(), {"shape": list(value.shape), "dtype": str(value.dtype)}
    elif module in ("pandas", "pyarrow"):
        encoded = _parquet(value)
        if encoded is not None:
            return encoded
    elif _is_model(value):
        return "model", b"", {}
    return "pickle", _pickle(value, step), {}


def _has_tuple(value: Any) -> bool:
    if type(value) is tuple:
        return True
    if type(value) is list:
        return any(_has_tuple(v) for v in value)
    if type(value) is dict:
        return any(_has_tuple(v) for v in value.values())
    return False


def _parquet(value: Any) -> tuple[str, bytes, dict[str, Any]] | None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta: dict[str, Any] = {}
    try:
        if isinstance(value, pa.Table):
            table, meta["as"] = value, "arrow"
        elif isinstance(value, pd.DataFrame):
            if not all(isinstance(c, str) for c in value.columns):
                return None  # Parquet names columns by string: keep the real labels
            table, meta["as"] = pa.Table.from_pandas(value), "pandas"
        elif isinstance(value, pd.Series):
            if value.name is not None and not isinstance(value.name, str):
                return None
            meta.update({"as": "series", "name": value.name})
            table = pa.Table.from_pandas(value.to_frame(name=value.name or "__series__"))
        else:
            return None
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
    except (pa.ArrowException, TypeError, ValueError):
        return None  # mixed-type object columns and the like: the fallback keeps them
    meta["rows"] = table.num_rows
    return "parquet", buffer.getvalue(), meta


def _pickle(value: Any, step: str) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(value, protocol=5)
    except Exception as exc:  # pickling raises whatever the object's reducers raise
        raise StepFailed(
            step,
            f"its output, a {_type_name(value)}, cannot be stored ({type(exc).__name__}: "
            f"{exc}); return a DataFrame, an array, a model, a JSON value or a picklable object",
        ) from exc


def _is_model(value: Any) -> bool:
    from keel.registry.flavors import _is_onnx_model, _is_sklearn_estimator

    return not isinstance(value, type) and (_is_sklearn_estimator(value) or _is_onnx_model(value))


def _store_model(value: Any, put_bytes: Any, put_file: Any, step: str) -> OutputRef:
    from keel.registry.packaging import save_model_dir

    with tempfile.TemporaryDirectory(prefix="keel-step-model-") as tmp:
        folder = Path(tmp) / "model"
        try:
            info = save_model_dir(value, folder)
        except InvalidInput as exc:
            raise StepFailed(step, f"its model output cannot be saved: {exc.message}") from exc
        files = {}
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            blob = put_file(path)
            files[path.relative_to(folder).as_posix()] = [blob.digest, blob.size]
    manifest = orjson.dumps({"format": _MANIFEST_FORMAT, "files": files})
    blob = put_bytes(manifest)
    return OutputRef(blob.digest, blob.size, "model", _type_name(value), {"flavor": info.flavor})


def load_output(ref: OutputRef, blobs: BlobStore) -> Any:
    """Return the value a step stored (verified against its digest before decoding)."""
    data = blobs.read_bytes(ref.digest, name=f"step output {ref.digest[:12]}")
    if ref.kind == "json":
        return orjson.loads(data)
    if ref.kind == "npy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    if ref.kind == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        shape = ref.meta.get("as")
        if shape == "arrow":
            return table
        frame = table.to_pandas()
        if shape == "series":
            series = frame.iloc[:, 0]
            series.name = ref.meta.get("name")
            return series
        return frame
    if ref.kind == "model":
        return _load_model(data, blobs)
    if ref.kind == "pickle":
        import cloudpickle

        return cloudpickle.loads(data)
    raise InvalidInput(f"unknown step output kind {ref.kind!r}")


def _load_model(manifest: bytes, blobs: BlobStore) -> Any:
    from keel.registry.packaging import load_model_dir
    from keel.tracking.fluent import clean_artifact_path

    doc = orjson.loads(manifest)
    if not isinstance(doc, dict) or doc.get("format") != _MANIFEST_FORMAT:
        raise InvalidInput("a model output's manifest is not a Keel model file list")
    with tempfile.TemporaryDirectory(prefix="keel-step-model-") as tmp:
        root = Path(tmp)
        for rel, (digest, _size) in doc["files"].items():
            clean = clean_artifact_path(rel)  # a manifest never writes outside the folder
            blobs.get_file(digest, root / clean, name=clean)
        return load_model_dir(root).unwrap()
