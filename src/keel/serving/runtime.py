"""One registered model version as an inference runtime: tensors in, named tensors out.

How tensors map to the model (the version's signature decides; a model without one is
refused, the server could not name its inputs):

* dataframe signature — either one tensor per column (shape ``[n]`` or ``[n, 1]``, named as
  the column; optional columns may be left out) or one 2-D tensor ``[n, columns]`` of any
  name that is not a column name, read in the signature's column order;
* tensor signature — one tensor (model metadata names it ``input``) of the signature's shape.

``BYTES`` tensors become ``str`` for string/category/datetime columns and stay ``bytes`` for
binary ones. A float value that is NaN or infinite is refused unless its column is
``optional``: a non-optional column forbids missing values, and a network request carrying
them is more often a client bug than a meaningful input.

Outputs: ``predict`` always, and ``predict_proba`` when the model has it. Asking for no
output returns every output, as the protocol says; ask for ``predict`` alone to skip the
``predict_proba`` call. Output datatypes and shapes in the model metadata come from the
warm-up prediction on the input example (or one synthesised row), run before the version
is reported ready.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidInput

from ._values import (
    DATATYPE_OF_DTYPE,
    NUMERIC_KINDS,
    as_array,
    check_column,
    datatype_name,
    encode_text,
    fast_path,
)
from .protocol import (
    InferenceRequest,
    ModelMetadata,
    RequestedOutput,
    Tensor,
    TensorMetadata,
    datatype_of,
)

if TYPE_CHECKING:
    import pandas as pd

    from keel.registry.packaging import LoadedModel
    from keel.registry.signature import ColumnSpec

__all__ = ["ModelRuntime", "Prepared", "load_runtime"]

TENSOR_INPUT = "input"


@dataclass
class Prepared:
    """One request's input, checked and ready to concatenate with others.

    ``columns`` holds 1-D arrays by column name (dataframe signatures); ``array`` the single
    array (tensor signatures). ``outputs`` are the output names to return, in order.
    ``block``, when set, is the same input as one checked 2-D array in the signature's
    column order, and ``columns`` stays empty (a batch that needs columns takes views of
    the block): a request read as a matrix keeps it.
    """

    rows: int
    outputs: list[str]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    array: np.ndarray | None = None
    block: np.ndarray | None = None


def load_runtime(model_uri: str) -> ModelRuntime:
    """Load (digests verified) the version a ``models:/`` or ``runs:/`` URI names."""
    from keel.registry.api import load_model, resolve_model_version

    if model_uri.startswith("models:/"):
        version = resolve_model_version(model_uri)
        pinned = f"models:/{version.name}/{version.version}"  # an alias may move meanwhile
        return ModelRuntime(load_model(pinned), name=version.name, version=str(version.version))
    name = model_uri.rstrip("/").rpartition("/")[2]
    return ModelRuntime(load_model(model_uri), name=name, version=None)


class ModelRuntime:
    """A loaded model with its signature-derived tensor mapping; :meth:`warm` before use."""

    def __init__(self, model: LoadedModel, *, name: str, version: str | None) -> None:
        if model.signature is None:
            raise InvalidInput(
                f"model {name!r} has no signature; log it with an input_example or a "
                "signature so the server can name its input tensors"
            )
        self.model = model
        self.name = name
        self.version = version
        self.schema = model.signature.inputs
        self.output_names = ["predict"]
        if callable(getattr(model.unwrap(), "predict_proba", None)):
            self.output_names.append("predict_proba")
        self._outputs_meta: list[TensorMetadata] = []
        self._uniform, self._direct = fast_path(model, self.schema)
        self._names = [spec.name or "" for spec in self.schema.columns]
        # one tuple for the runtime's life: the prediction log compares a request's names
        # to the last one's by identity (keel.monitoring.prediction_intake)
        self.column_names: tuple[str, ...] = tuple(self._names)

    # -- metadata ---------------------------------------------------------------------------

    def metadata(self) -> ModelMetadata:
        """The protocol's model metadata (outputs known after :meth:`warm`)."""
        if self.schema.kind == "tensor":
            spec = self.schema.columns[0]
            shape = [-1 if d is None else d for d in (spec.shape or (None,))]
            inputs = [TensorMetadata(TENSOR_INPUT, datatype_name(spec.dtype), [-1, *shape[1:]])]
        else:
            inputs = [
                TensorMetadata(c.name or "", datatype_name(c.dtype), [-1]) for c in self._cols
            ]
        return ModelMetadata(
            name=self.name,
            versions=[] if self.version is None else [self.version],
            platform=f"keel_{self.model.flavor}",
            inputs=inputs,
            outputs=list(self._outputs_meta),
        )

    @property
    def _cols(self) -> tuple[ColumnSpec, ...]:
        return self.schema.columns

    # -- warm-up ----------------------------------------------------------------------------

    def warm(self) -> None:
        """Predict on the input example (or a synthesised row); raise if the model fails."""
        from keel.registry.packaging import input_example_to_data

        example = self.model.metadata.input_example
        if example is not None:
            data = input_example_to_data(example, self.model.signature)
        else:
            data = self._synthetic_row()
        result = self._predict(data, set(self.output_names))
        self._outputs_meta = [
            TensorMetadata(n, datatype_of(a), [-1, *a.shape[1:]]) for n, a in result.items()
        ]

    def _synthetic_row(self) -> Any:
        import pandas as pd

        def value(spec: ColumnSpec) -> Any:
            if spec.dtype in DATATYPE_OF_DTYPE:
                return np.zeros(1, dtype=spec.dtype)
            return np.array([""], dtype=object)

        if self.schema.kind == "tensor":
            spec = self.schema.columns[0]
            shape = [1, *(d or 1 for d in (spec.shape or (None,))[1:])]
            return np.zeros(shape, dtype=spec.dtype if spec.dtype in DATATYPE_OF_DTYPE else "f8")
        return pd.DataFrame({c.name: value(c) for c in self._cols})

    # -- requests ---------------------------------------------------------------------------

    def prepare(self, request: InferenceRequest) -> Prepared:
        """Check a request against the signature; ``InvalidInput`` names what is wrong."""
        outputs = self._outputs(request)
        if self.schema.kind == "tensor":
            return self._prepare_tensor(request.inputs, outputs)
        by_name = {t.name: t for t in request.inputs}
        names = {c.name for c in self._cols}
        unknown = [n for n in by_name if n not in names]
        if len(request.inputs) == 1 and unknown:
            return self._prepare_matrix(request.inputs[0], outputs)
        if unknown:
            raise InvalidInput(
                f"unknown input tensor(s) {unknown}; the model takes one tensor per column "
                f"{[c.name for c in self._cols]} or a single 2-D tensor"
            )
        rows: int | None = None
        columns: dict[str, np.ndarray] = {}
        for spec in self._cols:
            tensor = by_name.get(spec.name or "")
            if tensor is None:
                if not spec.optional:
                    raise InvalidInput(f"missing input tensor {spec.name!r}")
                continue
            data = tensor.data
            if data.ndim == 2 and data.shape[1] == 1:
                data = data[:, 0]
            if data.ndim != 1:
                raise InvalidInput(
                    f"input {tensor.name!r} has shape {list(tensor.data.shape)}; a column "
                    "tensor has shape [rows] or [rows, 1]"
                )
            if rows is not None and len(data) != rows:
                raise InvalidInput(
                    f"input {tensor.name!r} has {len(data)} rows, other inputs have {rows}"
                )
            rows = len(data)
            columns[spec.name or ""] = check_column(tensor.name, tensor.datatype, data, spec)
        if rows is None:
            raise InvalidInput("the request has no inputs the model takes")
        for spec in self._cols:
            if spec.name not in columns:  # an optional column left out: nulls
                columns[spec.name or ""] = np.full(rows, None, dtype=object)
        return Prepared(rows=rows, outputs=outputs, columns=columns)

    def _prepare_matrix(self, tensor: Tensor, outputs: list[str]) -> Prepared:
        data, width = tensor.data, len(self._cols)
        if data.ndim != 2 or data.shape[1] != width:
            raise InvalidInput(
                f"input {tensor.name!r} has shape {list(data.shape)}; the model takes "
                f"[rows, {width}] or one tensor per column {[c.name for c in self._cols]}"
            )
        if self._uniform is not None and data.dtype.kind in NUMERIC_KINDS:
            # every column numeric and required: what _column checks, once for the block
            self._check_finite(data, lambda j: f"{tensor.name}[:, {j}]")
            return Prepared(rows=data.shape[0], outputs=outputs, block=data)
        columns = {
            spec.name or "": check_column(
                f"{tensor.name}[:, {j}]", tensor.datatype, data[:, j], spec
            )
            for j, spec in enumerate(self._cols)
        }
        return Prepared(rows=data.shape[0], outputs=outputs, columns=columns)

    def prepare_rows(self, names: list[str] | None, matrix: np.ndarray) -> Prepared | None:
        """A numeric 2-D ``matrix`` whose columns are ``names`` (``/invocations`` rows; None:
        the signature's order, as unnamed rows are read) as one ``predict`` request, or None
        when only :meth:`prepare_frame` can tell.

        Taken only when the signature's columns are all required and of one numeric dtype
        and ``names`` are exactly those columns: the checks are then those ``prepare_frame``
        makes column by column, made once on the whole block.
        """
        width = len(self._cols)
        if (
            self._uniform is None
            or matrix.ndim != 2
            or matrix.shape[1] != width
            or matrix.dtype.kind not in NUMERIC_KINDS
            or (names is not None and len(names) != width)
        ):
            return None
        if names is None or names == self._names:  # the signature's order: nothing to move
            block = matrix
        else:
            position = {name: j for j, name in enumerate(names)}
            if len(position) != width:
                return None
            try:
                order = [position[name] for name in self._names]
            except KeyError:
                return None
            block = matrix[:, order]
        self._check_finite(block, self._names.__getitem__)
        return Prepared(rows=block.shape[0], outputs=["predict"], block=block)

    def _check_finite(self, block: np.ndarray, where: Callable[[int], str]) -> None:
        """``InvalidInput`` naming the first column (``where(j)``) holding NaN or inf."""
        if block.dtype.kind != "f" or not block.size:
            return
        finite = np.isfinite(block)
        if not finite.all():
            bad = where(int(np.flatnonzero(~finite.all(axis=0))[0]))
            raise InvalidInput(
                f"input {bad!r} holds NaN or infinite values; the model's signature does not "
                "allow missing values there"
            )

    def _columns_of(self, item: Prepared) -> dict[str, np.ndarray]:
        if item.block is None:
            return item.columns
        return {name: item.block[:, j] for j, name in enumerate(self._names)}

    def _prepare_tensor(self, inputs: list[Tensor], outputs: list[str]) -> Prepared:
        if len(inputs) != 1:
            raise InvalidInput(f"the model takes one input tensor, got {len(inputs)}")
        tensor, spec = inputs[0], self.schema.columns[0]
        if tensor.name != TENSOR_INPUT:
            raise InvalidInput(f"unknown input tensor {tensor.name!r}; expected {TENSOR_INPUT!r}")
        expected = spec.shape or (None,)
        data = tensor.data
        if data.ndim != len(expected) or any(
            d is not None and d != n for d, n in zip(expected[1:], data.shape[1:], strict=True)
        ):
            shown = [-1 if d is None else d for d in expected]
            raise InvalidInput(
                f"input {tensor.name!r} has shape {list(data.shape)}; the model expects {shown}"
            )
        array = check_column(tensor.name, tensor.datatype, data, spec)
        return Prepared(rows=data.shape[0], outputs=outputs, array=array)

    def _outputs(self, request: InferenceRequest) -> list[str]:
        if not request.outputs:
            return list(self.output_names)
        wanted = [o.name for o in request.outputs]
        unknown = [n for n in wanted if n not in self.output_names]
        if unknown:
            raise InvalidInput(f"unknown output(s) {unknown}; the model has {self.output_names}")
        return wanted

    def prepare_frame(self, frame: pd.DataFrame) -> Prepared:
        """Check a DataFrame (``/invocations``) and return it as one ``predict`` request."""
        if self.schema.kind == "tensor":
            tensor = Tensor(TENSOR_INPUT, "FP64", list(frame.shape), frame.to_numpy())
            return self._prepare_tensor([tensor], ["predict"])
        labels = frame.columns.tolist()
        if not all(isinstance(c, str) for c in labels):  # rows given as lists
            if len(labels) != len(self._cols):
                raise InvalidInput(
                    f"rows have {len(labels)} values; the model takes {len(self._cols)}: "
                    f"{[c.name for c in self._cols]}"
                )
            frame = frame.set_axis([c.name for c in self._cols], axis=1)
        inputs = []
        for name in frame.columns.tolist():
            values = frame[name].to_numpy()
            if values.dtype.kind in "OSU":
                values = np.array([encode_text(v) for v in values.tolist()], dtype=object)
            inputs.append(Tensor(str(name), datatype_of(values), [len(values)], values))
        return self.prepare(InferenceRequest(inputs=inputs, outputs=[RequestedOutput("predict")]))

    # -- prediction -------------------------------------------------------------------------

    def run(self, batch: list[Prepared]) -> dict[str, np.ndarray]:
        """Predict once on the concatenation of ``batch``; outputs asked by any of them."""
        wanted = {name for item in batch for name in item.outputs}
        direct = self._direct_input(batch)
        if direct is not None:
            return self._predict(direct, wanted, self.model.unwrap())
        if self.schema.kind == "tensor":
            arrays = [item.array for item in batch if item.array is not None]
            data: Any = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
        else:
            import pandas as pd

            parts = [self._columns_of(item) for item in batch]
            if len(parts) == 1:
                merged = parts[0]
            else:
                merged = {n: np.concatenate([part[n] for part in parts]) for n in parts[0]}
            arrays = list(merged.values())
            dtypes = {a.dtype for a in arrays}
            if len(dtypes) == 1 and next(iter(dtypes)).kind in "biuf":
                # one dtype: one 2-D block, ~6x cheaper to build than one block per column
                data = pd.DataFrame(np.column_stack(arrays), columns=list(merged))
            else:
                data = pd.DataFrame(merged, copy=False)
        return self._predict(data, wanted)

    def _direct_input(self, batch: list[Prepared]) -> Any:
        """The estimator's own input for ``batch``, when signature checks would change nothing.

        That is when every request is a block of the signature's one dtype (enforcement
        would pass the DataFrame through as it is) and the flavor's input preparation is
        known: an array for an estimator fitted on one, the named DataFrame otherwise.
        """
        if self._direct is None or not all(
            item.block is not None and item.block.dtype == self._uniform for item in batch
        ):
            return None
        blocks = [item.block for item in batch if item.block is not None]
        block = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
        if not len(block):  # zero rows: LoadedModel answers those without the model
            return None
        if self._direct == "array":
            return block
        import pandas as pd

        return pd.DataFrame(block, columns=[spec.name for spec in self._cols])

    def _predict(self, data: Any, wanted: set[str], model: Any = None) -> dict[str, np.ndarray]:
        model = self.model if model is None else model
        results: dict[str, np.ndarray] = {}
        for name in self.output_names:
            if name not in wanted:
                continue
            method = model.predict if name == "predict" else model.predict_proba
            results[name] = as_array(method(data))
        return results
