"""The ``pyfunc`` flavor: any object with ``predict(model_input)``, pickled with cloudpickle.

cloudpickle stores classes defined in ``__main__`` (a script, a notebook) by value, so they
load in another process. This flavor goes one step further: when the model's class comes
from a module that is not installed (a file next to the training script, a test module),
that module is pickled by value too, so serving does not need the training code on its
path. Installed packages stay pickled by reference and must be installed where the model
loads.

After loading, ``model.load_context(context)`` is called if the object defines it, with a
:class:`ModelContext` giving the model's directory.
"""

from __future__ import annotations

import platform
import site
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from keel.errors import InvalidInput

from . import Flavor, check_versions, model_file

__all__ = ["ModelContext", "PyfuncFlavor"]

MODEL_FILE = "model.pkl"
# cloudpickle only promises to load what the same cloudpickle version wrote; Python is
# compared by major.minor (bytecode changes between minor versions).
_EXACT = frozenset({"cloudpickle"})


@dataclass(frozen=True)
class ModelContext:
    """What ``load_context`` receives: the directory the model was loaded from."""

    directory: Path


class PyfuncFlavor(Flavor):
    """Stores any object with a ``predict`` method with cloudpickle."""

    name: ClassVar[str] = "pyfunc"

    def save(self, model: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.pkl``; return its name, the class, versions and by-value modules."""
        import cloudpickle

        if isinstance(model, type) or not callable(getattr(model, "predict", None)):
            raise InvalidInput(
                f"a pyfunc model must be an instance with a predict(model_input) method, "
                f"not {model!r:.80}"
            )
        by_value = _user_modules(model)
        registered = set(_registered_by_value())
        for module in by_value:
            cloudpickle.register_pickle_by_value(sys.modules[module])
        try:
            with open(Path(directory) / MODEL_FILE, "wb") as f:
                cloudpickle.dump(model, f)
        finally:
            for module in by_value:
                if module not in registered:
                    cloudpickle.unregister_pickle_by_value(sys.modules[module])
        cls = type(model)
        return {
            "file": MODEL_FILE,
            "serialization": "cloudpickle",
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "pickled_by_value": by_value,
            "versions": {
                "python": platform.python_version(),
                "cloudpickle": cloudpickle.__version__,
            },
        }

    def load(self, directory: Path, meta: Mapping[str, Any]) -> Any:
        """Return the object saved in ``directory`` after calling its ``load_context``."""
        import cloudpickle

        versions = meta.get("versions") or {}
        if not isinstance(versions, Mapping):
            raise InvalidInput("pyfunc flavor metadata: 'versions' must be an object")
        check_versions(versions, exact=_EXACT, source=f"this {meta.get('class', 'model')}")
        with open(Path(directory) / model_file(meta, MODEL_FILE), "rb") as f:
            model = cloudpickle.load(f)
        load_context = getattr(model, "load_context", None)
        if callable(load_context):
            load_context(ModelContext(directory=Path(directory)))
        return model


def _registered_by_value() -> list[str]:
    import cloudpickle

    return list(cloudpickle.list_registry_pickle_by_value())


def _user_modules(model: Any) -> list[str]:
    """Return the top-level module of ``model``'s class if it is user code, not installed."""
    top = type(model).__module__.partition(".")[0]
    if top in ("__main__", "builtins", "keel") or top in sys.stdlib_module_names:
        return []  # __main__ is by value already; keel and the stdlib are always there
    module = sys.modules.get(top)
    origin = getattr(module, "__file__", None)
    if module is None or origin is None:
        return []
    path = Path(origin).resolve()
    if any(path.is_relative_to(root) for root in _installed_roots()):
        return []
    return [top]


def _installed_roots() -> list[Path]:
    roots = {sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib")}
    roots.update(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    return [Path(r).resolve() for r in roots]
