"""Offline bundles: a registered model as a self-contained folder that runs without Keel.

:func:`bundle_model` writes::

    out/
      model/            the version's files, as stored in the registry
      MANIFEST.json     each file's BLAKE3 digest and size, the flavor, the signature
      requirements.txt  the runtime libraries, pinned to the versions installed now
      serve.py          the runner: verifies every digest, then predicts (CLI or HTTP)
      README.md         how to run it

``serve.py`` imports only the standard library and the pinned requirements (never
``keel``). It refuses to load a model whose files no longer match ``MANIFEST.json``, or
whose ``model/`` folder gained files, naming the file. The folder is assembled under a
temporary name beside ``out`` and renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel._version import __version__ as keel_version
from keel.errors import InvalidInput, MissingDependency

__all__ = ["BUNDLE_FORMAT", "BundleReport", "bundle_model"]

BUNDLE_FORMAT = 1
RUNNER = Path(__file__).with_name("_bundle_runner.py")
# What the runner needs besides the standard library, per flavor (distribution names).
_COMMON = ("numpy", "pandas", "pyarrow", "blake3")
_BY_FLAVOR = {
    "sklearn": ("scikit-learn", "scipy", "joblib", "threadpoolctl"),
    "pyfunc": ("cloudpickle",),
    "onnx": ("onnxruntime",),
}
_README = """# {uri} — offline bundle

Made by Keel {keel_version} on {created_at} for Python {python_version}.

    python -m venv .venv && .venv/bin/pip install -r requirements.txt
    .venv/bin/python serve.py verify                    # check every file's digest
    .venv/bin/python serve.py predict input.parquet     # or .csv / .json; CSV on stdout
    .venv/bin/python serve.py http --port 8080          # POST /invocations on 127.0.0.1

`serve.py` checks every file against MANIFEST.json before it loads the model and refuses
to run if any file changed.
"""


@dataclass(frozen=True)
class BundleReport:
    """What :func:`bundle_model` wrote."""

    model_uri: str
    path: Path
    flavor: str
    files: tuple[str, ...]
    requirements: tuple[str, ...]
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able data."""
        return {
            "model_uri": self.model_uri,
            "path": str(self.path),
            "flavor": self.flavor,
            "files": list(self.files),
            "requirements": list(self.requirements),
            "size_bytes": self.size_bytes,
        }


def bundle_model(
    model_uri: str, out_dir: str | os.PathLike[str], *, force: bool = False
) -> BundleReport:
    """Write the model ``model_uri`` names as an offline bundle in ``out_dir``.

    ``out_dir`` must not exist or be empty; with ``force`` a non-empty folder is replaced
    (only once the new bundle is complete).
    """
    from keel.registry.packaging import read_model_info
    from keel.tracking.datasets import digest_path

    from ._model_files import model_files, verify_files

    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir).strip():
        raise InvalidInput(f"the output folder must be a non-empty path, not {out_dir!r}")
    target = Path(out_dir)
    if target.exists() and not target.is_dir():
        raise InvalidInput(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise InvalidInput(
            f"{target} is not empty; choose a new folder or pass force=True (--force)"
        )
    if not target.parent.is_dir():
        raise InvalidInput(f"the parent folder {target.parent} does not exist")
    files = model_files(model_uri)
    verify_files(files.folder, files.files)
    info = read_model_info(files.folder)
    requirements = _requirements(info.flavor, info.flavor_meta)
    created_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be shipped
        for rel, _digest, _size in files.files:
            dest = staging / "model" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(files.folder / rel, dest)
        (staging / "requirements.txt").write_text("\n".join(requirements) + "\n", "utf-8")
        shutil.copyfile(RUNNER, staging / "serve.py")
        facts = {
            "uri": model_uri,
            "keel_version": keel_version,
            "created_at": created_at,
            "python_version": platform.python_version(),
        }
        (staging / "README.md").write_text(_README.format(**facts), "utf-8")
        listed = sorted(
            p.relative_to(staging).as_posix()
            for p in staging.rglob("*")
            if p.is_file() and p.name != "serve.py"
        )
        manifest = {
            "format": BUNDLE_FORMAT,
            "model_uri": model_uri,
            "name": files.name,
            "version": files.version,
            "flavor": info.flavor,
            "flavor_meta": info.flavor_meta,
            "signature": None if info.signature is None else info.signature.to_dict(),
            "created_at": created_at,
            "keel_version": keel_version,
            "python_version": platform.python_version(),
            "files": [
                {
                    "path": rel,
                    "digest": digest_path(staging / rel),
                    "size": (staging / rel).stat().st_size,
                }
                for rel in listed
            ],
        }
        (staging / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        if target.exists():
            _replace(staging, target)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BundleReport(
        model_uri=model_uri,
        path=target,
        flavor=info.flavor,
        files=(*listed, "serve.py", "MANIFEST.json"),
        requirements=tuple(requirements),
        size_bytes=size,
    )


def _requirements(flavor: str, flavor_meta: dict[str, Any]) -> list[str]:
    names = [*_COMMON, *_BY_FLAVOR.get(flavor, ())]
    recorded = flavor_meta.get("versions") or {}
    if isinstance(recorded, dict):  # e.g. xgboost for its scikit-learn wrapper
        names += [n for n in recorded if isinstance(n, str) and n not in ("python", "onnx")]
    pins = {}
    for name in names:
        try:
            pins[name.lower()] = f"{name}=={importlib.metadata.version(name)}"
        except importlib.metadata.PackageNotFoundError:
            raise MissingDependency(
                f"the bundle's runner needs {name!r}, which is not installed here; install it "
                "(pip install " + name + ") so its version can be pinned"
            ) from None
    return sorted(pins.values(), key=str.lower)


def _replace(staging: Path, target: Path) -> None:
    """Swap a complete new bundle in for the old folder's contents."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
