"""The ``onnx`` flavor: an ``onnx.ModelProto`` saved as ``model.onnx``, run by onnxruntime.

onnx and onnxruntime are the ``onnx`` extra: they are imported only here, through
``keel.errors.require``, so a missing extra raises ``MissingDependency`` naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from keel.errors import InvalidInput, SchemaError, require

from . import Flavor, check_versions, model_file

if TYPE_CHECKING:
    import numpy as np

__all__ = ["OnnxFlavor", "OnnxModel"]

MODEL_FILE = "model.onnx"
# onnxruntime tensor types → numpy dtypes
_DTYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


class OnnxFlavor(Flavor):
    """Stores an ``onnx.ModelProto``; loads it into an :class:`OnnxModel`."""

    name: ClassVar[str] = "onnx"

    def save(self, model: Any, directory: Path) -> dict[str, Any]:
        """Write ``model.onnx``; return its name, graph inputs/outputs, opsets and versions."""
        onnx: Any = require("onnx", "onnx")
        if not isinstance(model, onnx.ModelProto):
            raise InvalidInput(
                f"the onnx flavor needs an onnx.ModelProto, not {type(model).__qualname__}"
            )
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            raise InvalidInput(f"the ONNX model is invalid: {exc}") from None
        onnx.save_model(model, str(Path(directory) / MODEL_FILE))
        versions = {"onnx": onnx.__version__}
        with contextlib.suppress(ImportError):
            ort: Any = require("onnxruntime", "onnx")
            versions["onnxruntime"] = ort.__version__
        return {
            "file": MODEL_FILE,
            "ir_version": int(model.ir_version),
            "opsets": {op.domain or "ai.onnx": int(op.version) for op in model.opset_import},
            "inputs": [_value_info(v) for v in model.graph.input],
            "outputs": [_value_info(v) for v in model.graph.output],
            "versions": versions,
        }

    def load(self, directory: Path, meta: Mapping[str, Any]) -> OnnxModel:
        """Return an :class:`OnnxModel` running ``model.onnx`` with onnxruntime."""
        ort: Any = require("onnxruntime", "onnx")
        versions = meta.get("versions") or {}
        if not isinstance(versions, Mapping):
            raise InvalidInput("onnx flavor metadata: 'versions' must be an object")
        # The runtime runs any model whose opsets it supports; the onnx package is not needed.
        recorded = {k: v for k, v in versions.items() if k == "onnxruntime"}
        check_versions(recorded, source="this ONNX model")
        path = Path(directory) / model_file(meta, MODEL_FILE)
        session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
        return OnnxModel(session)


class OnnxModel:
    """An onnxruntime session with ``predict``: feeds the inputs, returns the first output."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._inputs = list(session.get_inputs())
        self._outputs = list(session.get_outputs())

    @property
    def input_names(self) -> list[str]:
        """The graph's input names, in order."""
        return [i.name for i in self._inputs]

    @property
    def output_names(self) -> list[str]:
        """The graph's output names, in order."""
        return [o.name for o in self._outputs]

    def predict(self, data: Any) -> np.ndarray:
        """Return the first output of the graph for ``data`` as an ndarray."""
        import numpy as np

        return np.asarray(self.run(data)[0])

    def run(self, data: Any) -> list[Any]:
        """Return every output of the graph for ``data``, in graph order."""
        return list(self.session.run(None, self._feeds(data)))

    def _feeds(self, data: Any) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        if len(self._inputs) == 1:
            arg = self._inputs[0]
            values = data.to_numpy() if isinstance(data, pd.DataFrame | pd.Series) else data
            return {arg.name: _cast(np.asarray(values), arg)}
        if not isinstance(data, pd.DataFrame | Mapping):
            raise SchemaError(
                f"this ONNX model has inputs {self.input_names}: pass a DataFrame or a dict "
                f"with those names, not {type(data).__name__}"
            )
        missing = [name for name in self.input_names if name not in data]
        if missing:
            raise SchemaError(
                f"the input is missing {missing}; the model's inputs are {self.input_names}"
            )
        feeds = {}
        for arg in self._inputs:
            values = data[arg.name]
            array = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
            if len(arg.shape) == 2 and array.ndim == 1:  # a column feeding an [N, 1] input
                array = array.reshape(-1, 1)
            feeds[arg.name] = _cast(array, arg)
        return feeds

    def __repr__(self) -> str:
        return f"OnnxModel(inputs={self.input_names}, outputs={self.output_names})"


def _cast(array: np.ndarray, arg: Any) -> np.ndarray:
    dtype = _DTYPES.get(arg.type)
    if dtype is None or array.dtype == dtype:
        return array
    if dtype == "object":
        return array.astype(str).astype(object)
    try:
        return array.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"ONNX input {arg.name!r} needs {dtype}; cannot convert: {exc}") from None


def _value_info(value: Any) -> dict[str, Any]:
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    return {"name": value.name, "elem_type": int(tensor.elem_type), "shape": dims}
