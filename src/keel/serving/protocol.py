"""The Open Inference Protocol v2 (KServe / Triton) as plain dataclasses and one interface.

Both transports — REST (``keel.serving.rest``) and gRPC (``keel.serving.grpc_server``) —
convert their wire format to and from these types and call an :class:`InferenceService`, so
the protocol's rules (datatypes, shapes, error meaning) live here once.

Datatypes are the protocol's names: ``BOOL``, ``UINT8``..``UINT64``, ``INT8``..``INT64``,
``FP16``, ``FP32``, ``FP64`` and ``BYTES``. A :class:`Tensor`'s ``data`` is always a numpy
array already shaped as ``shape``; ``BYTES`` tensors hold an ``object`` array of ``bytes``.

Errors a service raises are Keel's: :class:`~keel.errors.NotFound` for an unknown model or
version, :class:`~keel.errors.InvalidInput` for a malformed tensor, and
:class:`~keel.errors.Overloaded` when the request queue is full (HTTP 503 with
``Retry-After``, gRPC ``UNAVAILABLE``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DATATYPES",
    "InferenceRequest",
    "InferenceResponse",
    "InferenceService",
    "ModelMetadata",
    "RequestedOutput",
    "ServerMetadata",
    "Tensor",
    "TensorMetadata",
    "check_shape",
    "datatype_of",
    "element_count",
    "element_size",
    "numpy_dtype",
]

# OIP datatype -> (numpy dtype name, element size in bytes; 0 = variable, BYTES).
# Binary data is little-endian, as the binary tensor data extension specifies.
DATATYPES: dict[str, tuple[str, int]] = {
    "BOOL": ("bool", 1),
    "UINT8": ("<u1", 1),
    "UINT16": ("<u2", 2),
    "UINT32": ("<u4", 4),
    "UINT64": ("<u8", 8),
    "INT8": ("<i1", 1),
    "INT16": ("<i2", 2),
    "INT32": ("<i4", 4),
    "INT64": ("<i8", 8),
    "FP16": ("<f2", 2),
    "FP32": ("<f4", 4),
    "FP64": ("<f8", 8),
    "BYTES": ("object", 0),
}
# numpy dtype.str / kind -> OIP datatype, for outputs.
_FROM_NUMPY: dict[str, str] = {
    "|b1": "BOOL",
    "|u1": "UINT8",
    "<u2": "UINT16",
    "<u4": "UINT32",
    "<u8": "UINT64",
    "|i1": "INT8",
    "<i2": "INT16",
    "<i4": "INT32",
    "<i8": "INT64",
    "<f2": "FP16",
    "<f4": "FP32",
    "<f8": "FP64",
}


@dataclass
class Tensor:
    """One named tensor of a request or a response; ``data`` is shaped as ``shape``."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class RequestedOutput:
    """An output the caller asked for, with its per-output parameters (``binary_data``)."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferenceRequest:
    """A decoded ``infer`` request: its inputs, requested outputs (empty = all), id."""

    inputs: list[Tensor]
    outputs: list[RequestedOutput] = field(default_factory=list)
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class InferenceResponse:
    """The result of ``infer``: the model's name and version and the output tensors."""

    model_name: str
    model_version: str | None
    outputs: list[Tensor]
    id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorMetadata:
    """Name, datatype and shape (``-1`` for a variable dimension) of a model input/output."""

    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True)
class ModelMetadata:
    """The protocol's model metadata response."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


@dataclass(frozen=True)
class ServerMetadata:
    """The protocol's server metadata response."""

    name: str
    version: str
    extensions: list[str]


@runtime_checkable
class InferenceService(Protocol):
    """What the transports call. ``version`` is ``None`` when the URL names no version."""

    def server_live(self) -> bool:
        """Whether the process is up and able to answer."""
        ...

    def server_ready(self) -> bool:
        """Whether every served model is loaded, warmed and ready for traffic."""
        ...

    def server_metadata(self) -> ServerMetadata:
        """Name, version and supported protocol extensions of this server."""
        ...

    def model_ready(self, name: str, version: str | None) -> bool:
        """Whether the model is ready; raises ``NotFound`` for an unknown model/version."""
        ...

    def model_metadata(self, name: str, version: str | None) -> ModelMetadata:
        """Inputs and outputs of a model; raises ``NotFound`` if unknown."""
        ...

    async def infer(
        self, name: str, version: str | None, request: InferenceRequest
    ) -> InferenceResponse:
        """Run the model; raises ``NotFound``, ``InvalidInput`` or ``Overloaded``."""
        ...


def numpy_dtype(datatype: str) -> np.dtype:
    """Return the numpy dtype of an OIP datatype; ``InvalidInput`` if it is not one."""
    import numpy as np

    try:
        return np.dtype(DATATYPES[datatype][0])
    except KeyError:
        raise InvalidInput(
            f"unsupported datatype {datatype!r}; expected one of {', '.join(DATATYPES)}"
        ) from None


def element_size(datatype: str) -> int:
    """Bytes per element in binary form (0 for ``BYTES``, whose elements vary)."""
    numpy_dtype(datatype)
    return DATATYPES[datatype][1]


def datatype_of(array: np.ndarray) -> str:
    """Return the OIP datatype for a numpy array (strings and bytes are ``BYTES``)."""
    dtype = array.dtype
    if dtype.kind in "OSU":
        return "BYTES"
    key = dtype.newbyteorder("<").str if dtype.byteorder == ">" else dtype.str
    key = key.replace("=", "<")
    try:
        return _FROM_NUMPY[key]
    except KeyError:
        raise InvalidInput(f"no protocol datatype for numpy dtype {dtype}") from None


def element_count(shape: list[int]) -> int:
    """Number of elements of a shape; ``InvalidInput`` on a negative or non-int dimension."""
    for dim in shape:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise InvalidInput(f"invalid shape {shape}: dimensions must be integers >= 0")
    return math.prod(shape)


def check_shape(name: str, shape: list[int], size: int) -> None:
    """Raise ``InvalidInput`` unless ``shape`` holds exactly ``size`` elements."""
    expected = element_count(shape)
    if expected != size:
        raise InvalidInput(
            f"tensor {name!r}: shape {shape} holds {expected} elements but data has {size}"
        )
