"""Model flavors: how one kind of model object is written to a directory and read back.

A :class:`Flavor` writes a model's files into a directory and returns JSON-able metadata
(file names, library versions); given the same directory and metadata it loads an object
with ``.predict``. Built-in flavors, imported only when asked for:

* ``sklearn`` — scikit-learn estimators and anything with their API (XGBoost, LightGBM…),
  stored with joblib;
* ``pyfunc`` — any object with a ``predict(model_input)`` method, stored with cloudpickle;
* ``onnx`` — an ``onnx.ModelProto``, served through onnxruntime.

Loading never fails because a library version changed: it warns with
:class:`VersionMismatchWarning`, as scikit-learn's own ``InconsistentVersionWarning`` does.
A flavor's ``load`` deserialises: call it only on a directory whose digest was verified.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import platform
import warnings
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, ClassVar

from keel.errors import InvalidInput, MissingDependency

__all__ = [
    "Flavor",
    "VersionMismatchWarning",
    "available_flavors",
    "check_versions",
    "flavor_for",
    "get_flavor",
    "installed_version",
    "model_file",
]

_BUILTIN: dict[str, tuple[str, str]] = {
    "onnx": ("keel.registry.flavors.onnx", "OnnxFlavor"),
    "pyfunc": ("keel.registry.flavors.pyfunc", "PyfuncFlavor"),
    "sklearn": ("keel.registry.flavors.sklearn", "SklearnFlavor"),
}
_LOADED: dict[str, Flavor] = {}


class VersionMismatchWarning(UserWarning):
    """A model was saved with another version of a library than the one installed."""


class Flavor(ABC):
    """Writes one kind of model into a directory and reads it back."""

    name: ClassVar[str]

    @abstractmethod
    def save(self, model: Any, directory: Path) -> dict[str, Any]:
        """Write ``model``'s files into ``directory``; return JSON-able metadata for ``load``."""

    @abstractmethod
    def load(self, directory: Path, meta: Mapping[str, Any]) -> Any:
        """Return the model saved in ``directory`` (an object with ``.predict``)."""

    def prepare_input(self, model: Any, data: Any) -> Any:
        """Return ``data`` (already checked against the signature) as ``model`` wants it."""
        return data


def available_flavors() -> tuple[str, ...]:
    """Return the names of the flavors Keel knows, sorted."""
    return tuple(sorted(_BUILTIN))


def get_flavor(name: str) -> Flavor:
    """Return the flavor called ``name``; an unknown name raises ``InvalidInput``."""
    if not isinstance(name, str) or name not in _BUILTIN:
        known = ", ".join(available_flavors())
        raise InvalidInput(f"unknown model flavor {name!r}; known flavors: {known}")
    flavor = _LOADED.get(name)
    if flavor is None:
        module_name, class_name = _BUILTIN[name]
        flavor = getattr(importlib.import_module(module_name), class_name)()
        _LOADED[name] = flavor
    return flavor


def flavor_for(model: Any) -> Flavor:
    """Return the flavor that can package ``model``, detected from its type."""
    if isinstance(model, type):
        raise InvalidInput(f"pass a model instance, not the class {model.__qualname__}")
    if _is_onnx_model(model):
        return get_flavor("onnx")
    if _is_sklearn_estimator(model):
        return get_flavor("sklearn")
    if callable(getattr(model, "predict", None)):
        return get_flavor("pyfunc")
    raise InvalidInput(
        f"cannot package a {type(model).__qualname__} as a model: it needs a callable "
        "predict(model_input) method (scikit-learn-style estimators, onnx.ModelProto and any "
        "object with predict are supported)"
    )


def installed_version(library: str) -> str | None:
    """Return the installed version of ``library`` (``"python"`` too), None if unknown.

    Raises ``MissingDependency`` when the library is not installed at all. Nothing is
    imported: versions come from package metadata.
    """
    if library == "python":
        return platform.python_version()
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        pass
    if library.isidentifier() and importlib.util.find_spec(library) is not None:
        return None  # importable, but its distribution has another name
    raise MissingDependency(
        f"this model needs {library!r}, which is not installed; install it with: "
        f"pip install {library}"
    )


def check_versions(
    recorded: Mapping[str, str], *, exact: Collection[str] = (), source: str = "the model"
) -> None:
    """Warn (``VersionMismatchWarning``) for each recorded library version not installed.

    Libraries named in ``exact`` must match to the last digit; others (and Python) only in
    their major.minor version. A library that is not installed raises ``MissingDependency``.
    """
    for library, saved in recorded.items():
        now = installed_version(library)
        if now is None or not isinstance(saved, str):
            continue
        same = now == saved if library in exact else _minor(now) == _minor(saved)
        if not same:
            warnings.warn(
                f"{source} was saved with {library} {saved} but {library} {now} is installed; "
                f"it may fail to load or predict differently. Install {library}=={saved} "
                "or re-save the model with the installed version.",
                VersionMismatchWarning,
                stacklevel=4,
            )


def model_file(meta: Mapping[str, Any], default: str) -> str:
    """Return the file name recorded in flavor metadata, refusing anything but a plain name."""
    name = meta.get("file", default)
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise InvalidInput(f"flavor metadata names an invalid model file: {name!r}")
    return name


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def _is_onnx_model(model: Any) -> bool:
    return any(
        c.__name__ == "ModelProto" and c.__module__.partition(".")[0] == "onnx"
        for c in type(model).__mro__
    )


def _is_sklearn_estimator(model: Any) -> bool:
    if callable(getattr(model, "predict", None)) and callable(getattr(model, "get_params", None)):
        return True
    return any(
        c.__name__ == "BaseEstimator" and c.__module__.startswith("sklearn.")
        for c in type(model).__mro__
    )
