"""A model version's files on local disk, digest-verified, for jobs that run elsewhere.

Batch workers (processes, Ray actors) and offline bundles need the model's files, not a
database connection: :func:`model_files` materialises them once from the registry (every
digest checked) and returns the folder plus the manifest, so a worker can verify each file
again before it deserialises anything (:func:`verify_files`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import IntegrityError, InvalidInput

__all__ = ["ModelFiles", "model_files", "verify_files"]


@dataclass(frozen=True)
class ModelFiles:
    """A local folder holding a model's files, and each file's BLAKE3 digest and size."""

    uri: str
    folder: Path
    files: tuple[tuple[str, str, int], ...]  # (relative path, digest, size)
    name: str | None = None
    version: int | None = None

    def read_all(self) -> dict[str, bytes]:
        """Return every file's bytes by relative path (to ship to a remote worker)."""
        return {path: (self.folder / path).read_bytes() for path, _, _ in self.files}


def model_files(model_uri: str) -> ModelFiles:
    """Return the files of the model ``model_uri`` names (``models:/…`` or ``runs:/…``)."""
    import orjson

    from keel.registry import api
    from keel.registry.uris import ModelRef, parse_model_uri

    ref = parse_model_uri(model_uri)
    stores = api._stores()
    name = version = None
    if isinstance(ref, ModelRef):
        mv = api.resolve_model_version(model_uri)
        digest, name, version = mv.artifact_digest, mv.name, mv.version
    else:
        entries = api._run_model_files(stores, ref)
        listed = [
            {"path": e.path[len(ref.path) + 1 :], "digest": e.digest, "size": e.size}
            for e in entries
        ]
        manifest = {"format": api.MANIFEST_FORMAT, "files": listed}
        digest = stores.artifacts.put_bytes(
            orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS)
        ).digest
    folder = api._materialise(stores, digest, model_uri)
    manifest = orjson.loads(stores.artifacts.read_bytes(digest, name=f"{model_uri} manifest"))
    files = tuple(
        (str(f["path"]), str(f["digest"]), int(f.get("size") or 0)) for f in manifest["files"]
    )
    return ModelFiles(uri=model_uri, folder=folder, files=files, name=name, version=version)


def verify_files(folder: Path, files: Any) -> None:
    """Raise ``IntegrityError`` naming the first file of ``files`` whose digest changed."""
    from keel.tracking.datasets import digest_path

    for path, digest, _size in files:
        rel = Path(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise InvalidInput(f"model manifest names an unsafe path {path!r}")
        target = Path(folder) / rel
        if not target.is_file():
            raise IntegrityError(f"model file {path} is missing from {folder}")
        if digest_path(target) != digest:
            raise IntegrityError(
                f"model file {path} in {folder} does not match its recorded digest; "
                "it was changed after registration"
            )
