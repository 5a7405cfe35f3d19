"""The ``sklearn`` flavor: scikit-learn estimators and anything with their API, via joblib.

XGBoost's, LightGBM's and CatBoost's scikit-learn wrappers are estimators too: the flavor
records the estimator's own library version next to scikit-learn's, numpy's and joblib's,
and warns on load when any of them changed.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from keel.errors import InvalidInput

from . import Flavor, check_versions, model_file

__all__ = ["SklearnFlavor"]

MODEL_FILE = "model.joblib"
COMPRESS = 3  # zlib level 3: most of the size win for a fraction of level 9's time
# Loading with another scikit-learn (or the estimator's own library) may change behaviour:
# those must match exactly. numpy and joblib only need the same major.minor.
_EXACT = frozenset({"scikit-learn"})


class SklearnFlavor(Flavor):
    """Stores an estimator with ``joblib.dump`` and loads it with ``joblib.load``."""

    name: ClassVar[str] = "sklearn"

    def save(self, model: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.joblib``; return its name, the estimator class and library versions."""
        import joblib

        if not callable(getattr(model, "predict", None)) and not callable(
            getattr(model, "get_params", None)
        ):
            raise InvalidInput(
                f"{type(model).__qualname__} is not a scikit-learn-style estimator: it has "
                "neither predict nor get_params"
            )
        joblib.dump(model, Path(directory) / MODEL_FILE, compress=COMPRESS)
        cls = type(model)
        versions = {name: importlib.metadata.version(name) for name in _CORE}
        library = cls.__module__.partition(".")[0]
        own = _library_version(library)
        if library != "sklearn" and own is not None:
            versions[library] = own
        return {
            "file": MODEL_FILE,
            "serialization": "joblib",
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "versions": versions,
        }

    def load(self, directory: Path, meta: Mapping[str, Any]) -> Any:
        """Return the estimator saved in ``directory``, warning on library version changes."""
        import joblib

        versions = meta.get("versions") or {}
        if not isinstance(versions, Mapping):
            raise InvalidInput("sklearn flavor metadata: 'versions' must be an object")
        library = str(meta.get("class", "")).partition(".")[0]
        exact = _EXACT | ({library} if library and library != "sklearn" else set())
        check_versions(versions, exact=exact, source=f"this {meta.get('class', 'estimator')}")
        return joblib.load(Path(directory) / model_file(meta, MODEL_FILE))

    def prepare_input(self, model: Any, data: Any) -> Any:
        """Return ``data`` as a DataFrame or an array, whichever ``model`` was fitted on.

        scikit-learn warns when an estimator fitted on an array is given a DataFrame, or one
        fitted on named columns gets an array; the signature has already fixed the column
        order, so converting is safe.
        """
        import numpy as np
        import pandas as pd

        names = getattr(model, "feature_names_in_", None)
        if isinstance(data, pd.DataFrame):
            if names is None and hasattr(model, "n_features_in_"):
                return data.to_numpy()
            return data
        if (
            names is not None
            and isinstance(data, np.ndarray)
            and data.ndim == 2
            and data.shape[1] == len(names)
        ):
            return pd.DataFrame(data, columns=names)
        return data


_CORE = ("scikit-learn", "numpy", "joblib")


def _library_version(library: str) -> str | None:
    try:
        return importlib.metadata.version(library)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules.get(library), "__version__", None)
        return version if isinstance(version, str) else None
