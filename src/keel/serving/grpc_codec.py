"""Open Inference Protocol v2 over gRPC: protobuf messages <-> :mod:`keel.serving.protocol`.

A tensor's elements travel either in the ``InferTensorContents`` field of its datatype
(``fp32_contents`` for FP32; INT8, INT16 and INT32 in ``int_contents``; UINT8, UINT16 and
UINT32 in ``uint_contents``) or, for every input of a request at once, in
``raw_input_contents``: one ``bytes`` per input, the flattened row-major elements in
little-endian order, a BYTES element being a 4-byte little-endian length and its bytes.
FP16 exists only in raw form. A response is raw (``raw_output_contents``) when the request
was, as ``tritonclient.grpc`` expects, or when an output is FP16.

Decoding is vectorised (``np.frombuffer`` on raw bytes, one ``np.array`` over a typed
field); only BYTES elements are walked one by one. Sizes are checked against the declared
shape before anything is allocated, so a huge declared shape with little data is refused
cheaply. Every malformed message raises :class:`~keel.errors.InvalidInput`. Arrays decoded
from raw contents share the message's buffer and are read-only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from keel.errors import InvalidInput
from keel.serving.proto import grpc_predict_v2_pb2 as pb
from keel.serving.protocol import (
    DATATYPES,
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    RequestedOutput,
    ServerMetadata,
    Tensor,
    check_shape,
    element_count,
    numpy_dtype,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "CONTENTS_FIELD",
    "decode_bytes_raw",
    "decode_infer_request",
    "decode_parameters",
    "encode_bytes_raw",
    "encode_infer_response",
    "encode_model_metadata",
    "encode_parameters",
    "encode_server_metadata",
]

# OIP datatype -> the InferTensorContents field carrying it (FP16 has none: raw only).
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
# The wire type of each typed field, to read it before narrowing (INT8 from int32 values).
_FIELD_DTYPE: dict[str, str] = {
    "bool_contents": "bool",
    "int_contents": "<i4",
    "int64_contents": "<i8",
    "uint_contents": "<u4",
    "uint64_contents": "<u8",
    "fp32_contents": "<f4",
    "fp64_contents": "<f8",
}
_ALL_FIELDS = (*_FIELD_DTYPE, "bytes_contents")
_LENGTH_PREFIX = 4


# --- parameters ---------------------------------------------------------------------------


def decode_parameters(params: Mapping[str, pb.InferParameter]) -> dict[str, Any]:
    """Return a protobuf parameter map as a plain dict (bool, int, str or float values)."""
    out: dict[str, Any] = {}
    for key, param in params.items():
        choice = param.WhichOneof("parameter_choice")
        out[key] = getattr(param, choice) if choice is not None else None
    return out


def encode_parameters(target: Any, params: Mapping[str, Any]) -> None:
    """Fill a protobuf parameter map from a plain dict; ``InvalidInput`` on other types."""
    for key, value in params.items():
        if value is None:
            continue
        param = target[key]
        if isinstance(value, bool | np.bool_):
            param.bool_param = bool(value)
        elif isinstance(value, int | np.integer):
            if int(value) >= 2**63:
                param.uint64_param = int(value)
            else:
                param.int64_param = int(value)
        elif isinstance(value, float | np.floating):
            param.double_param = float(value)
        elif isinstance(value, str):
            param.string_param = value
        else:
            raise InvalidInput(
                f"parameter {key!r}: a {type(value).__name__} cannot be sent over gRPC; "
                "use a bool, int, float or str"
            )


# --- BYTES in raw form ----------------------------------------------------------------------


def decode_bytes_raw(name: str, raw: bytes, shape: list[int]) -> np.ndarray:
    """Decode length-prefixed BYTES elements into an ``object`` array shaped ``shape``."""
    count = element_count(shape)
    # Each element takes at least its 4-byte length: refuse before allocating anything.
    if count * _LENGTH_PREFIX > len(raw):
        raise InvalidInput(
            f"tensor {name!r}: shape {shape} holds {count} BYTES elements but the raw "
            f"contents are only {len(raw)} bytes (each element needs a 4-byte length)"
        )
    view = memoryview(raw)
    out = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + _LENGTH_PREFIX > len(raw):
            raise InvalidInput(f"tensor {name!r}: raw BYTES contents end inside element {i}")
        size = int.from_bytes(view[offset : offset + _LENGTH_PREFIX], "little")
        offset += _LENGTH_PREFIX
        if offset + size > len(raw):
            raise InvalidInput(
                f"tensor {name!r}: BYTES element {i} declares {size} bytes but only "
                f"{len(raw) - offset} remain"
            )
        out[i] = bytes(view[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise InvalidInput(
            f"tensor {name!r}: {len(raw) - offset} bytes left over after the {count} BYTES "
            f"elements of shape {shape}"
        )
    return out.reshape(shape)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytearray | memoryview | np.bytes_):
        return bytes(value)
    if isinstance(value, np.str_):
        return str(value).encode()
    raise InvalidInput(f"a BYTES element must be bytes or str, not {type(value).__name__}")


def _bytes_elements(data: np.ndarray) -> list[bytes]:
    return [_as_bytes(v) for v in np.asarray(data).ravel(order="C").tolist()]


def encode_bytes_raw(data: np.ndarray) -> bytes:
    """Encode BYTES elements as 4-byte little-endian lengths each followed by the bytes."""
    parts: list[bytes] = []
    for element in _bytes_elements(data):
        parts.append(len(element).to_bytes(_LENGTH_PREFIX, "little"))
        parts.append(element)
    return b"".join(parts)


# --- requests -------------------------------------------------------------------------------


def _check_datatype(name: str, datatype: str) -> np.dtype:
    try:
        return numpy_dtype(datatype)
    except InvalidInput as exc:
        raise InvalidInput(f"tensor {name!r}: {exc.message}") from None


def _reshape(name: str, flat: np.ndarray, shape: list[int]) -> np.ndarray:
    try:
        return flat.reshape(shape)
    except ValueError as exc:  # a zero-element shape whose byte size overflows
        raise InvalidInput(f"tensor {name!r}: cannot build shape {shape}: {exc}") from None


def _decode_raw(name: str, datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    dtype = _check_datatype(name, datatype)
    if datatype == "BYTES":
        return decode_bytes_raw(name, raw, shape)
    count = element_count(shape)
    size = DATATYPES[datatype][1]
    if count * size != len(raw):
        raise InvalidInput(
            f"tensor {name!r}: shape {shape} of {datatype} needs {count * size} bytes "
            f"but the raw contents are {len(raw)} bytes"
        )
    if datatype == "BOOL":  # any non-zero byte is true; never reinterpret arbitrary bytes
        flat = np.frombuffer(raw, dtype=np.uint8) != 0
    else:
        flat = np.frombuffer(raw, dtype=dtype)
    return _reshape(name, flat, shape)


def _decode_typed(name: str, datatype: str, shape: list[int], contents: Any) -> np.ndarray:
    dtype = _check_datatype(name, datatype)
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(
            f"tensor {name!r}: {datatype} has no typed contents field; send it in "
            "raw_input_contents"
        )
    others = [f for f in _ALL_FIELDS if f != field and len(getattr(contents, f))]
    if others:
        raise InvalidInput(
            f"tensor {name!r} is {datatype} but has elements in {', '.join(others)}; "
            f"{datatype} elements go in {field}"
        )
    values = getattr(contents, field)
    check_shape(name, shape, len(values))
    if datatype == "BYTES":
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
        return _reshape(name, flat, shape)
    wide = np.array(values, dtype=_FIELD_DTYPE[field])
    if wide.dtype != dtype:  # INT8/INT16 from int32, UINT8/UINT16 from uint32
        info = np.iinfo(dtype)
        if wide.size and (wide.min() < info.min or wide.max() > info.max):
            raise InvalidInput(
                f"tensor {name!r}: {datatype} elements must lie in [{info.min}, {info.max}]"
            )
        wide = wide.astype(dtype)
    return _reshape(name, wide, shape)


def _has_typed_contents(tensor: Any) -> bool:
    return tensor.HasField("contents") and any(
        len(getattr(tensor.contents, f)) for f in _ALL_FIELDS
    )


def decode_infer_request(
    message: pb.ModelInferRequest,
) -> tuple[str, str | None, InferenceRequest]:
    """Return ``(model name, version or None, request)`` of a ``ModelInferRequest``."""
    if not message.model_name:
        raise InvalidInput("ModelInferRequest.model_name is empty: name the model to run")
    raw = message.raw_input_contents
    inputs = message.inputs
    if raw and len(raw) != len(inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries but the request has {len(inputs)} "
            "inputs: send one entry per input, in the order of the inputs"
        )
    seen: set[str] = set()
    tensors: list[Tensor] = []
    for index, tensor in enumerate(inputs):
        name = tensor.name
        if not name:
            raise InvalidInput(f"input {index} has no name")
        if name in seen:
            raise InvalidInput(f"input {name!r} is given more than once")
        seen.add(name)
        shape = list(tensor.shape)
        element_count(shape)
        if raw:
            if _has_typed_contents(tensor):
                raise InvalidInput(
                    f"input {name!r} has typed contents but the request also has "
                    "raw_input_contents: use one or the other"
                )
            data = _decode_raw(name, tensor.datatype, shape, raw[index])
        else:
            data = _decode_typed(name, tensor.datatype, shape, tensor.contents)
        tensors.append(
            Tensor(
                name=name,
                datatype=tensor.datatype,
                shape=shape,
                data=data,
                parameters=decode_parameters(tensor.parameters),
            )
        )
    outputs = [
        RequestedOutput(name=out.name, parameters=decode_parameters(out.parameters))
        for out in message.outputs
    ]
    request = InferenceRequest(
        inputs=tensors,
        outputs=outputs,
        id=message.id or None,
        parameters=decode_parameters(message.parameters),
    )
    return message.model_name, message.model_version or None, request


# --- responses ------------------------------------------------------------------------------


def _output_array(tensor: Tensor) -> np.ndarray:
    data = np.asarray(tensor.data)
    check_shape(tensor.name, list(tensor.shape), int(data.size))
    return data


def encode_infer_response(response: InferenceResponse, *, raw: bool) -> pb.ModelInferResponse:
    """Build a ``ModelInferResponse``; ``raw`` puts every output in raw_output_contents.

    The response is raw anyway when an output is FP16, which has no typed field.
    """
    raw = raw or any(t.datatype == "FP16" for t in response.outputs)
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    encode_parameters(message.parameters, response.parameters)
    for tensor in response.outputs:
        data = _output_array(tensor)
        dtype = numpy_dtype(tensor.datatype)
        out = message.outputs.add(name=tensor.name, datatype=tensor.datatype)
        out.shape.extend(int(d) for d in tensor.shape)
        encode_parameters(out.parameters, tensor.parameters)
        if tensor.datatype == "BYTES":
            if raw:
                message.raw_output_contents.append(encode_bytes_raw(data))
            else:
                out.contents.bytes_contents.extend(_bytes_elements(data))
        elif raw:
            message.raw_output_contents.append(
                np.ascontiguousarray(data, dtype=dtype).tobytes(order="C")
            )
        else:
            field = CONTENTS_FIELD[tensor.datatype]
            flat = np.asarray(data, dtype=dtype).ravel(order="C")
            getattr(out.contents, field).extend(flat.tolist())
    return message


def encode_model_metadata(metadata: ModelMetadata) -> pb.ModelMetadataResponse:
    """Build a ``ModelMetadataResponse``."""
    message = pb.ModelMetadataResponse(
        name=metadata.name, versions=list(metadata.versions), platform=metadata.platform
    )
    for target, tensors in ((message.inputs, metadata.inputs), (message.outputs, metadata.outputs)):
        for t in tensors:
            target.add(name=t.name, datatype=t.datatype, shape=[int(d) for d in t.shape])
    return message


def encode_server_metadata(metadata: ServerMetadata) -> pb.ServerMetadataResponse:
    """Build a ``ServerMetadataResponse``."""
    return pb.ServerMetadataResponse(
        name=metadata.name, version=metadata.version, extensions=list(metadata.extensions)
    )
