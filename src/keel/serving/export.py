"""Export a registered scikit-learn model to ONNX, check it, optionally quantise and register it.

:func:`export_onnx` converts with skl2onnx, taking the input types from the version's
signature (one ``float`` tensor ``[N, columns]`` when every input is numeric, one named
``[N, 1]`` input per column otherwise), with ``zipmap`` off so a classifier's
probabilities are a plain tensor. Optional dynamic quantisation
(``onnxruntime.quantization.quantize_dynamic``, int8 weights) shrinks models built of
``MatMul``/``Gemm`` (MLPs); tree and linear models are ``ai.onnx.ml`` operators it leaves
as they are, and the report shows the sizes either way.

The exported model is then run by onnxruntime on the version's input example (or on
``data``) next to the original model, and the :class:`ExportReport` gives the largest
absolute difference (of probabilities for a classifier, predictions otherwise), the labels
that differ, the file size, and the median latency of each over 1 row and a batch. With
``register=NAME`` the ONNX model is logged in a new run and registered (``onnx`` flavor).

onnx, onnxruntime and skl2onnx are the ``onnx`` extra.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import InvalidInput, require

__all__ = ["ExportReport", "export_onnx"]

LATENCY_RUNS = 50
BATCH_ROWS = 100
# Operators dynamic quantisation rewrites to int8; ai.onnx.ml operators it leaves alone.
_QUANTIZABLE = frozenset({"MatMul", "Gemm", "Conv", "Attention", "LSTM", "GRU"})


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and measured."""

    source_uri: str
    path: Path
    size_bytes: int
    unquantized_size_bytes: int
    quantized: bool  # False when asked but the graph has nothing to quantise (trees, linear)
    opset: int
    compared: str  # "probabilities" or "predictions"
    rows_compared: int
    max_abs_difference: float
    label_mismatches: int | None
    batch_rows: int
    original_latency_ms: dict[str, float]
    onnx_latency_ms: dict[str, float]
    registered_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able data."""
        return {
            "source_uri": self.source_uri,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "unquantized_size_bytes": self.unquantized_size_bytes,
            "quantized": self.quantized,
            "opset": self.opset,
            "compared": self.compared,
            "rows_compared": self.rows_compared,
            "max_abs_difference": self.max_abs_difference,
            "label_mismatches": self.label_mismatches,
            "batch_rows": self.batch_rows,
            "original_latency_ms": self.original_latency_ms,
            "onnx_latency_ms": self.onnx_latency_ms,
            "registered_uri": self.registered_uri,
        }


def export_onnx(
    model_uri: str,
    output_path: str | os.PathLike[str] | None = None,
    *,
    quantize: bool = False,
    data: Any = None,
    register: str | None = None,
    overwrite: bool = False,
    target_opset: int | None = None,
    latency_runs: int = LATENCY_RUNS,
) -> ExportReport:
    """Convert the scikit-learn model ``model_uri`` names to ONNX; check and time it.

    ``output_path`` defaults to ``<name>-<version>.onnx`` in the working directory;
    ``data`` (rows matching the signature) replaces the stored input example for the check.
    """
    import keel
    from keel.registry.packaging import input_example_to_data

    if not isinstance(quantize, bool):
        raise InvalidInput(f"quantize must be true or false, not {quantize!r}")
    if isinstance(latency_runs, bool) or not isinstance(latency_runs, int):
        raise InvalidInput(f"latency_runs must be an integer from 1 to 10000, not {latency_runs!r}")
    if not 1 <= latency_runs <= 10_000:
        raise InvalidInput(f"latency_runs must be an integer from 1 to 10000, not {latency_runs}")
    if register is not None:
        from keel.registry.uris import check_model_name

        register = check_model_name(register)
    require("skl2onnx", "onnx")
    ort: Any = require("onnxruntime", "onnx")
    loaded = keel.load_model(model_uri)  # digests verified
    if loaded.flavor != "sklearn":
        why = (
            "it is already ONNX"
            if loaded.flavor == "onnx"
            else "a pyfunc model is arbitrary Python code, which has no ONNX graph"
        )
        raise InvalidInput(
            f"{model_uri} is a {loaded.flavor} model; ONNX export converts scikit-learn "
            f"models (flavor sklearn) only: {why}"
        )
    signature = loaded.signature
    if signature is None:
        raise InvalidInput(
            f"{model_uri} has no signature; ONNX needs the input types: log the model with "
            "an input_example"
        )
    target = _target(model_uri, output_path, overwrite=overwrite)
    if data is None:
        mv = keel.resolve_model_version(model_uri) if model_uri.startswith("models:/") else None
        example = mv.input_example if mv is not None else loaded.metadata.input_example
        if example is None:
            raise InvalidInput(f"{model_uri} has no input example; pass data= to check the export")
        data = input_example_to_data(example, signature)
    from keel.registry.enforce import enforce_schema

    checked = enforce_schema(data, signature.inputs)
    if len(checked) == 0:
        raise InvalidInput("the data to check the export with has no rows")
    estimator = loaded.unwrap()
    proto = _convert(estimator, signature.inputs, target_opset)
    opset = max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx"))
    with tempfile.TemporaryDirectory(prefix="keel-onnx-") as tmp:
        plain = Path(tmp) / "model.onnx"
        plain.write_bytes(proto.SerializeToString())
        unquantized_size = plain.stat().st_size
        final = plain
        quantized = False
        if quantize and _quantizable(proto):
            final = Path(tmp) / "model.quant.onnx"
            _quantize(proto, final)
            quantized = True
        from keel.registry.flavors.onnx import OnnxModel

        session = ort.InferenceSession(str(final), providers=["CPUExecutionProvider"])
        onnx_model = OnnxModel(session)
        from keel.registry.flavors import get_flavor

        prepare = get_flavor("sklearn").prepare_input
        prepared = prepare(estimator, checked)
        compared, max_diff, mismatches = _compare(estimator, onnx_model, prepared, checked)
        one, batch = _head(checked, 1), _tile(checked, BATCH_ROWS)
        one_p, batch_p = prepare(estimator, one), prepare(estimator, batch)
        original_ms = {
            "1_row": _median_ms(lambda: estimator.predict(one_p), latency_runs),
            "batch": _median_ms(lambda: estimator.predict(batch_p), latency_runs),
        }
        onnx_ms = {
            "1_row": _median_ms(lambda: onnx_model.run(one), latency_runs),
            "batch": _median_ms(lambda: onnx_model.run(batch), latency_runs),
        }
        tmp_target = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            tmp_target.write_bytes(final.read_bytes())
            os.replace(tmp_target, target)
        finally:
            tmp_target.unlink(missing_ok=True)
    registered = None
    if register is not None:
        registered = _register(target, model_uri, register, _head(checked, 5), quantized)
    return ExportReport(
        source_uri=model_uri,
        path=target,
        size_bytes=target.stat().st_size,
        unquantized_size_bytes=unquantized_size,
        quantized=quantized,
        opset=int(opset),
        compared=compared,
        rows_compared=len(checked),
        max_abs_difference=max_diff,
        label_mismatches=mismatches,
        batch_rows=len(batch),
        original_latency_ms=original_ms,
        onnx_latency_ms=onnx_ms,
        registered_uri=registered,
    )


def _target(model_uri: str, output_path: str | os.PathLike[str] | None, *, overwrite: bool) -> Path:
    if output_path is None:
        stem = model_uri.split(":/", 1)[-1].strip("/").replace("/", "-").replace("@", "-")
        output_path = Path.cwd() / f"{stem}.onnx"
    if not isinstance(output_path, str | os.PathLike) or not str(output_path).strip():
        raise InvalidInput(f"the output path must be a non-empty path, not {output_path!r}")
    target = Path(output_path)
    if not target.parent.is_dir():
        raise InvalidInput(f"output folder {target.parent} does not exist")
    if target.is_dir():
        raise InvalidInput(f"output {target} is a folder; name a file such as model.onnx")
    if target.exists() and not overwrite:
        raise InvalidInput(f"output {target} already exists; pass overwrite=True (--force)")
    return target


def _convert(estimator: Any, inputs: Any, target_opset: int | None) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import (
        BooleanTensorType,
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from sklearn.base import is_classifier

    numeric = all(c.dtype.startswith(("float", "int", "uint")) for c in inputs.columns)
    if inputs.kind == "tensor":
        spec = inputs.columns[0]
        shape = list(spec.shape) if spec.shape else [None]
        if not numeric:
            raise InvalidInput(f"cannot export a model taking a {spec.dtype} tensor to ONNX")
        initial: list[Any] = [("input", FloatTensorType([None, *shape[1:]]))]
    elif numeric:
        initial = [("input", FloatTensorType([None, len(inputs.columns)]))]
    else:
        types = {"bool": BooleanTensorType, "float64": DoubleTensorType, "string": StringTensorType}
        initial = []
        for column in inputs.columns:
            if column.dtype.startswith("float"):
                kind = FloatTensorType
            elif column.dtype.startswith(("int", "uint")):
                kind = Int64TensorType
            elif column.dtype in types:
                kind = types[column.dtype]
            else:
                raise InvalidInput(
                    f"input column {column.name!r} is {column.dtype}; ONNX export takes "
                    "numeric, bool and string columns"
                )
            initial.append((column.name, kind([None, 1])))
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if is_classifier(final) else None
    try:
        return convert_sklearn(
            estimator, initial_types=initial, options=options, target_opset=target_opset
        )
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise InvalidInput(
            f"skl2onnx cannot convert this {type(estimator).__name__}: {type(exc).__name__}: {text}"
        ) from exc


def _quantizable(proto: Any) -> bool:
    return any(node.op_type in _QUANTIZABLE and not node.domain for node in proto.graph.node)


def _quantize(proto: Any, target: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    seen: dict[str, Any] = {}  # skl2onnx may list the default domain twice; the quantiser
    for op in proto.opset_import:  # wants it once
        if op.domain not in seen or op.version > seen[op.domain].version:
            seen[op.domain] = op
    del proto.opset_import[:]
    proto.opset_import.extend(seen.values())
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "consider pre-processing" on every call
    try:
        quantize_dynamic(proto, str(target), weight_type=QuantType.QInt8)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise InvalidInput(f"cannot quantise this model: {type(exc).__name__}: {text}") from exc
    finally:
        quiet.setLevel(level)


def _compare(
    estimator: Any, onnx_model: Any, prepared: Any, checked: Any
) -> tuple[str, float, int | None]:
    import numpy as np

    outputs = onnx_model.run(checked)
    labels = np.asarray(outputs[0]).reshape(len(checked), -1)
    if callable(getattr(estimator, "predict_proba", None)) and len(outputs) > 1:
        expected = np.asarray(estimator.predict_proba(prepared), dtype="float64")
        got = np.asarray(outputs[1], dtype="float64").reshape(expected.shape)
        original = np.asarray(estimator.predict(prepared)).reshape(len(checked), -1)
        mismatches = int(np.sum(np.any(original.astype(str) != labels.astype(str), axis=1)))
        return "probabilities", float(np.max(np.abs(expected - got))), mismatches
    expected = np.asarray(estimator.predict(prepared), dtype="float64").reshape(labels.shape)
    return "predictions", float(np.max(np.abs(expected - labels.astype("float64")))), None


def _head(data: Any, rows: int) -> Any:
    return data.iloc[:rows] if hasattr(data, "iloc") else data[:rows]


def _tile(data: Any, rows: int) -> Any:
    import numpy as np
    import pandas as pd

    repeat = -(-rows // len(data))
    if isinstance(data, pd.DataFrame):
        return pd.concat([data] * repeat, ignore_index=True).iloc[:rows]
    return np.concatenate([data] * repeat)[:rows]


def _median_ms(call: Callable[[], Any], runs: int) -> float:
    call()  # warm-up: first calls allocate
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return round(statistics.median(times) / 1e6, 4)


def _register(path: Path, source: str, name: str, example: Any, quantized: bool) -> str:
    import onnx

    import keel

    tags = {"keel.export.source": source, "keel.export.quantized": str(quantized).lower()}
    with keel.start_run(experiment="keel-exports", run_name=f"onnx-{name}", tags=tags) as run:
        run.log_model(onnx.load_model(str(path)), "model", input_example=example, flavor="onnx")
    version = keel.register_model(
        f"runs:/{run.run_id}/model", name, description=f"ONNX export of {source}", tags=tags
    )
    return f"models:/{version.name}/{version.version}"
