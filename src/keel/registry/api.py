"""The registry SDK: register models, move aliases, load versions for prediction."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from keel.errors import IntegrityError, InvalidInput, NotFound
from keel.registry.entities import AliasChange, ModelVersion, RegisteredModel
from keel.registry.uris import (
    ModelRef,
    RunModelRef,
    check_alias,
    check_model_name,
    parse_model_uri,
)
from keel.tracking.context import current_user

if TYPE_CHECKING:
    from keel.registry.packaging import LoadedModel
    from keel.stores import Stores
    from keel.tracking.entities import ArtifactEntry

__all__ = [
    "delete_alias",
    "get_alias_history",
    "get_model_card",
    "get_model_version",
    "get_registered_model",
    "list_model_versions",
    "list_registered_models",
    "load_model",
    "register_model",
    "resolve_model_version",
    "set_alias",
    "set_model_card",
]

MANIFEST_FORMAT = 1


def _stores() -> Stores:
    from keel.stores import current_stores

    return current_stores()


def _check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int | str):
        raise InvalidInput(f"version must be a positive integer, got {version!r}")
    text = str(version)
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"version must be a positive integer, got {version!r}")
    return int(text)


def _check_model_files(ref: RunModelRef, entries: list[ArtifactEntry]) -> None:
    from keel.registry.packaging import MODEL_FILE

    if not any(e.path == f"{ref.path}/{MODEL_FILE}" for e in entries):
        raise NotFound(
            f"no Keel model at runs:/{ref.run_id}/{ref.path}; log one with run.log_model(...)"
        )


def _run_model_files(stores: Stores, ref: RunModelRef) -> list[ArtifactEntry]:
    entries = stores.tracking.list_artifacts(ref.run_id, ref.path)
    _check_model_files(ref, entries)
    return entries


def register_model(
    model_uri: str,
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> ModelVersion:
    """Register the model at ``runs:/<run-id>/<path>`` as the next version of ``name``."""
    from keel.registry.card import render_card_body
    from keel.registry.packaging import MODEL_FILE

    name = check_model_name(name)
    ref = parse_model_uri(model_uri)
    if not isinstance(ref, RunModelRef):
        raise InvalidInput(f"register a logged model by its runs:/ URI, not {model_uri!r}")
    stores = _stores()
    # The run, its inputs (for the card) and the model's files, in one read.
    snapshot = stores.tracking.get_run_snapshot(ref.run_id, ref.path)
    entries, run = snapshot.artifacts, snapshot.run
    _check_model_files(ref, entries)
    files = [
        {"path": e.path[len(ref.path) + 1 :], "digest": e.digest, "size": e.size} for e in entries
    ]
    manifest = orjson.dumps(
        {"format": MANIFEST_FORMAT, "files": files}, option=orjson.OPT_SORT_KEYS
    )
    manifest_blob = stores.artifacts.put_bytes(manifest)
    info_entry = next(e for e in entries if e.path == f"{ref.path}/{MODEL_FILE}")
    info = orjson.loads(stores.artifacts.read_bytes(info_entry.digest, name=info_entry.path))
    fields = {
        "run_id": ref.run_id,
        "source": model_uri,
        "artifact_digest": manifest_blob.digest,
        "flavor": info.get("flavor", "unknown"),
        "signature": info.get("signature"),
        "input_example": info.get("input_example"),
        "description": description,
        "metrics": run.metrics,
        "created_by": current_user(),
    }
    now = int(time.time() * 1000)
    draft = ModelVersion(
        name=name, version=0, status="ready", created_at=now, updated_at=now, **fields
    )
    fields["model_card"] = render_card_body(draft, run, snapshot.inputs)
    version = stores.registry.create_model_version(name, fields)
    for key, value in (tags or {}).items():
        stores.registry.set_version_tag(name, version.version, key, str(value))
    if tags:
        return stores.registry.get_model_version(name, version.version)
    return version


def get_registered_model(name: str) -> RegisteredModel:
    """Return the registered model ``name``."""
    return _stores().registry.get_registered_model(check_model_name(name))


def list_registered_models() -> list[RegisteredModel]:
    """Return every registered model."""
    return _stores().registry.list_registered_models()


def list_model_versions(name: str) -> list[ModelVersion]:
    """Return the versions of ``name``, newest first."""
    return _stores().registry.list_model_versions(check_model_name(name))


def get_model_version(name: str, version: int | str) -> ModelVersion:
    """Return version ``version`` of ``name``."""
    return _stores().registry.get_model_version(check_model_name(name), _check_version(version))


def set_alias(name: str, alias: str, version: int | str) -> AliasChange:
    """Point ``alias`` (e.g. "champion") at ``version`` of ``name``; return the change."""
    return _stores().registry.set_alias(
        check_model_name(name), check_alias(alias), _check_version(version), actor=current_user()
    )


def delete_alias(name: str, alias: str) -> AliasChange:
    """Remove ``alias`` from ``name``; return the change."""
    return _stores().registry.delete_alias(
        check_model_name(name), check_alias(alias), actor=current_user()
    )


def get_alias_history(name: str, alias: str | None = None) -> list[AliasChange]:
    """Return every move of ``name``'s aliases (or of one alias), oldest first."""
    clean = check_alias(alias) if alias is not None else None
    return _stores().registry.alias_history(check_model_name(name), clean)


def get_model_card(name: str, version: int | str) -> str:
    """Return the markdown model card of a version."""
    return _stores().registry.get_model_card(check_model_name(name), _check_version(version))


def set_model_card(name: str, version: int | str, *, intended_use: str) -> str:
    """Rewrite a version's card with the owner's intended-use text; return the card."""
    from keel.registry.card import card_title, render_card_body

    if not isinstance(intended_use, str) or not intended_use.strip():
        raise InvalidInput("intended_use must be non-empty text")
    stores = _stores()
    mv = get_model_version(name, version)
    run = inputs = None
    if mv.run_id:
        run = stores.tracking.get_run(mv.run_id)
        inputs = stores.tracking.get_inputs(mv.run_id)
    body = render_card_body(mv, run, inputs or [], intended_use=intended_use.strip())
    stores.registry.set_model_card(mv.name, mv.version, body)
    return card_title(mv.name, mv.version) + body


def resolve_model_version(model_uri: str) -> ModelVersion:
    """Return the registered version a ``models:/`` URI names."""
    ref = parse_model_uri(model_uri)
    if not isinstance(ref, ModelRef):
        raise InvalidInput(f"{model_uri!r} is not a registered model URI (models:/…)")
    registry = _stores().registry
    if ref.alias is not None:
        return registry.get_version_by_alias(ref.name, ref.alias)
    if ref.version is not None:
        return registry.get_model_version(ref.name, ref.version)
    model = registry.get_registered_model(ref.name)
    if model.latest_version == 0:
        raise NotFound(f"model {ref.name!r} has no versions yet")
    return registry.get_model_version(ref.name, model.latest_version)


def _cache_root(stores: Stores) -> Path:
    from keel.config import get_settings

    return get_settings().home / "cache" / "models"


def _materialise(stores: Stores, manifest_digest: str, label: str) -> Path:
    """Return a local folder holding the model's files, every digest verified."""
    from keel.tracking.datasets import digest_path

    manifest = orjson.loads(stores.artifacts.read_bytes(manifest_digest, name=f"{label} manifest"))
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, list) or not files:
        raise IntegrityError(f"model manifest of {label} is malformed (digest {manifest_digest})")
    folder = _cache_root(stores) / manifest_digest
    if folder.is_dir():
        # A cached copy is trusted only if every file still hashes to the manifest's digest.
        if all(
            (folder / f["path"]).is_file() and digest_path(folder / f["path"]) == f["digest"]
            for f in files
        ):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder.parent))
    try:
        for f in files:
            rel = Path(f["path"])
            if rel.is_absolute() or ".." in rel.parts:
                raise IntegrityError(f"model manifest of {label} names an unsafe path {rel}")
            stores.artifacts.get_file(f["digest"], staging / rel, name=f"{label}/{rel.as_posix()}")
        os.replace(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not folder.is_dir():  # another process may have won the race
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def load_model(model_uri: str) -> LoadedModel:
    """Return the model a URI names, ready to ``.predict``, after verifying its digests.

    Accepts ``models:/name/3``, ``models:/name@champion``, ``models:/name/latest`` and
    ``runs:/<run-id>/<path>``.
    """
    from keel.registry.packaging import load_model_dir

    stores = _stores()
    ref = parse_model_uri(model_uri)
    if isinstance(ref, RunModelRef):
        entries = _run_model_files(stores, ref)
        files = [
            {"path": e.path[len(ref.path) + 1 :], "digest": e.digest, "size": e.size}
            for e in entries
        ]
        manifest = orjson.dumps(
            {"format": MANIFEST_FORMAT, "files": files}, option=orjson.OPT_SORT_KEYS
        )
        digest = stores.artifacts.put_bytes(manifest).digest
    else:
        digest = resolve_model_version(model_uri).artifact_digest
    folder = _materialise(stores, digest, model_uri)
    return load_model_dir(folder)
