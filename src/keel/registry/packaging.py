"""Model packaging: a model object becomes a directory of files, and back.

A model directory holds its flavor's files plus ``keel-model.json``::

    {"format_version": 1, "flavor": "sklearn", "flavor_meta": {...},
     "signature": {"inputs": {...}, "outputs": {...}} | null,
     "input_example": {"columns": [...], "data": [[...]]} | [[...]] | null,
     "created_at": "2026-11-25T04:14:00Z", "python_version": "3.11.7", "keel_version": "0.1.0"}

:func:`load_model_dir` deserialises: the caller verifies the directory's digest first.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel._version import __version__ as keel_version
from keel.errors import InvalidInput

from .flavors import Flavor, flavor_for, get_flavor
from .signature import Signature, enforce_schema, infer_schema

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "EXAMPLE_ROWS",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "LoadedModel",
    "ModelInfo",
    "input_example_to_data",
    "load_model_dir",
    "read_model_info",
    "save_model_dir",
]

MODEL_FILE = "keel-model.json"
FORMAT_VERSION = 1
EXAMPLE_ROWS = 5  # an input example is a smoke test and documentation, not a dataset
_META_KEYS = ("format_version", "flavor_meta", "created_at", "python_version", "keel_version")


@dataclass(frozen=True)
class ModelInfo:
    """What ``keel-model.json`` says: flavor, signature, input example and the rest (``meta``).

    ``meta`` holds ``format_version``, ``flavor_meta``, ``created_at``, ``python_version``
    and ``keel_version``.
    """

    flavor: str
    signature: Signature | None
    input_example: Any
    meta: dict[str, Any]

    @property
    def flavor_meta(self) -> dict[str, Any]:
        """The flavor's own metadata: file names, library versions…"""
        return dict(self.meta.get("flavor_meta") or {})

    def to_dict(self) -> dict[str, Any]:
        """Return the ``keel-model.json`` document."""
        signature = None if self.signature is None else self.signature.to_dict()
        return {
            **self.meta,
            "flavor": self.flavor,
            "signature": signature,
            "input_example": self.input_example,
        }


class LoadedModel:
    """A model read back from its directory; ``predict`` checks input against the signature."""

    def __init__(self, model: Any, *, info: ModelInfo) -> None:
        self._model = model
        self._info = info
        self._flavor: Flavor = get_flavor(info.flavor)

    @property
    def flavor(self) -> str:
        """The flavor name: ``"sklearn"``, ``"pyfunc"`` or ``"onnx"``."""
        return self._info.flavor

    @property
    def signature(self) -> Signature | None:
        """The model's signature, or None if it was saved without one."""
        return self._info.signature

    @property
    def metadata(self) -> ModelInfo:
        """Everything ``keel-model.json`` records."""
        return self._info

    def unwrap(self) -> Any:
        """Return the underlying model object (an estimator, the user's object, an OnnxModel)."""
        return self._model

    def predict(self, data: Any) -> np.ndarray | pd.DataFrame | pd.Series:
        """Return the model's predictions for ``data`` once it matches the signature.

        A mismatch raises ``keel.errors.SchemaError``; errors raised by the model itself
        propagate unchanged. Zero rows give an empty result of the output schema's type
        without calling the model, when the signature records outputs.
        """
        method = self._method("predict")
        signature = self._info.signature
        if signature is not None:
            data = enforce_schema(data, signature.inputs)
            if len(data) == 0 and signature.outputs is not None:  # many models refuse 0 rows
                return enforce_schema([], signature.outputs)
        return method(self._flavor.prepare_input(self._model, data))

    @property
    def predict_proba(self) -> Callable[[Any], Any]:
        """The model's ``predict_proba``, with the same input checks (absent if it has none)."""
        method = self._method("predict_proba", AttributeError)

        def predict_proba(data: Any) -> Any:
            return method(self._prepare(data))

        return predict_proba

    def _method(self, name: str, error: type[Exception] = InvalidInput) -> Callable[[Any], Any]:
        method = getattr(self._model, name, None)
        if not callable(method):
            raise error(
                f"this {self.flavor} model ({type(self._model).__qualname__}) has no {name}"
            )
        return method

    def _prepare(self, data: Any) -> Any:
        if self._info.signature is not None:
            data = enforce_schema(data, self._info.signature.inputs)
        return self._flavor.prepare_input(self._model, data)

    def __repr__(self) -> str:
        signature = self._info.signature
        if signature is None:
            return f"<LoadedModel flavor={self.flavor!r} signature=None>"
        return (
            f"<LoadedModel flavor={self.flavor!r} inputs={signature.inputs} "
            f"outputs={signature.outputs}>"
        )


def save_model_dir(
    model: Any,
    directory: Path,
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | None = None,
) -> ModelInfo:
    """Write ``model`` into ``directory`` (new or empty); return what ``keel-model.json`` says.

    Without a ``signature``, one is inferred from ``input_example`` and the model's
    predictions for it (the saved model is loaded back for that, which also proves it
    loads). The example is stored truncated to its first :data:`EXAMPLE_ROWS` rows.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidInput(f"{directory} is not an empty directory; save a model into a new one")
    chosen = get_flavor(flavor) if flavor is not None else flavor_for(model)
    example = None if input_example is None else _normalise_example(input_example)
    if example is not None and signature is not None:
        enforce_schema(example, signature.inputs)  # the example must match a given signature
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        flavor_meta = chosen.save(model, directory)
        if signature is None and example is not None:
            signature = _infer_signature(model, chosen, directory, flavor_meta, example)
        info = ModelInfo(
            flavor=chosen.name,
            signature=signature,
            input_example=None if example is None else _example_to_json(example),
            meta={
                "format_version": FORMAT_VERSION,
                "flavor_meta": flavor_meta,
                "created_at": datetime.now(UTC)
                .isoformat(timespec="seconds")
                .replace("+00:00", "Z"),
                "python_version": platform.python_version(),
                "keel_version": keel_version,
            },
        )
        _write_json(directory / MODEL_FILE, info.to_dict())
    except BaseException:  # leave nothing half-written behind
        if created:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            _empty(directory)
        raise
    return info


def read_model_info(directory: Path) -> ModelInfo:
    """Return the parsed ``keel-model.json`` of a model directory; a bad one is ``InvalidInput``."""
    path = Path(directory) / MODEL_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist: {directory} is not a Keel model") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"{path} must hold a JSON object")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        hint = "; upgrade Keel to read it" if newer else ""
        raise InvalidInput(
            f"{path} has format_version {version!r}, Keel reads {FORMAT_VERSION}{hint}"
        )
    flavor = doc.get("flavor")
    if not isinstance(flavor, str) or not isinstance(doc.get("flavor_meta"), dict):
        raise InvalidInput(f"{path} needs a 'flavor' name and a 'flavor_meta' object")
    try:
        raw = doc.get("signature")
        signature = None if raw is None else Signature.from_dict(raw)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc.message}") from None
    meta = {key: doc.get(key) for key in _META_KEYS}
    return ModelInfo(
        flavor=flavor, signature=signature, input_example=doc.get("input_example"), meta=meta
    )


def load_model_dir(directory: Path) -> LoadedModel:
    """Return the model saved in ``directory``, ready to ``predict`` (deserialises: trust it)."""
    info = read_model_info(directory)
    model = get_flavor(info.flavor).load(Path(directory), info.flavor_meta)
    return LoadedModel(model, info=info)


def input_example_to_data(
    example_json: Any, signature: Signature | None = None
) -> pd.DataFrame | np.ndarray:
    """Return the stored input example as data again, cast to ``signature`` when given."""
    import numpy as np
    import pandas as pd

    inputs = None if signature is None else signature.inputs
    split = isinstance(example_json, Mapping) and {"columns", "data"} <= example_json.keys()
    if not split and not isinstance(example_json, list):
        raise InvalidInput("an input example is a {'columns', 'data'} object or a list of rows")
    dtype = None
    if inputs is not None and inputs.kind == "tensor" and inputs.columns[0].dtype[0] in "fiu":
        dtype = inputs.columns[0].dtype  # JSON nulls become NaN in a float tensor
    try:
        if split:
            data: Any = pd.DataFrame(example_json["data"], columns=example_json["columns"])
        else:
            data = np.asarray(example_json, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot rebuild the input example: {exc}") from None
    return data if inputs is None else enforce_schema(data, inputs)


def _normalise_example(example: Any) -> pd.DataFrame | np.ndarray:
    import numpy as np
    import pandas as pd

    if isinstance(example, pd.DataFrame | np.ndarray):
        return example
    if isinstance(example, pd.Series):
        return example.to_numpy() if example.name is None else example.to_frame()
    if isinstance(example, Mapping) or (
        isinstance(example, list) and example and isinstance(example[0], Mapping)
    ):
        try:
            return pd.DataFrame([example] if _all_scalars(example) else example)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"cannot read the input example as a table: {exc}") from None
    if isinstance(example, list | tuple):
        try:
            return np.asarray(example)
        except ValueError as exc:
            raise InvalidInput(f"cannot read the input example as an array: {exc}") from None
    raise InvalidInput(
        f"an input example must be a DataFrame, Series, ndarray, list or dict, "
        f"not {type(example).__name__}"
    )


def _all_scalars(example: Any) -> bool:
    import numpy as np

    return isinstance(example, Mapping) and all(np.ndim(v) == 0 for v in example.values())


def _infer_signature(
    model: Any, flavor: Flavor, directory: Path, flavor_meta: dict[str, Any], example: Any
) -> Signature:
    inputs = infer_schema(example)
    head = example.iloc[:EXAMPLE_ROWS] if hasattr(example, "iloc") else example[:EXAMPLE_ROWS]
    # Predict with the object as loaded: ONNX protos have no predict, and a pyfunc's
    # load_context may be what makes predict work. Plain objects are used as they are.
    if not callable(getattr(model, "predict", None)) or hasattr(model, "load_context"):
        model = flavor.load(directory, flavor_meta)
    if not callable(getattr(model, "predict", None)):
        return Signature(inputs=inputs)
    data = flavor.prepare_input(model, enforce_schema(head, inputs))
    try:
        output = model.predict(data)
    except Exception as exc:
        raise InvalidInput(
            f"model.predict(input_example) failed with {type(exc).__name__}: {exc}; fix the "
            "model or the example, or pass signature= to skip inference"
        ) from exc
    try:
        return Signature(inputs=inputs, outputs=infer_schema(output))
    except InvalidInput as exc:
        warnings.warn(
            f"the model's output has no inferable schema ({exc.message}); the signature records "
            "inputs only. Pass signature= to record outputs too.",
            UserWarning,
            stacklevel=3,
        )
        return Signature(inputs=inputs)


def _example_to_json(example: pd.DataFrame | np.ndarray) -> Any:
    import numpy as np

    head = example.iloc[:EXAMPLE_ROWS] if hasattr(example, "iloc") else example[:EXAMPLE_ROWS]
    try:
        if hasattr(head, "to_json"):
            text = head.to_json(orient="split", index=False, date_format="iso", double_precision=15)
            return json.loads(text)
        if head.dtype.kind == "f":
            values = head.astype(object)
            values[np.isnan(head)] = None
            return values.tolist()
        if head.dtype.kind in "Mm":
            return head.astype(str).tolist()
        values = head.tolist()
        json.dumps(values, allow_nan=False)
        return values
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"the input example cannot be stored as JSON: {exc}") from None


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n", "utf-8")
    os.replace(tmp, path)


def _empty(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
