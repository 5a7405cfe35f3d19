"""The binary tensor data extension (Triton ``extension_binary_data.md``), both directions.

A request body is a JSON header of ``Inference-Header-Content-Length`` bytes followed by raw
tensor bytes, in input order, for every input whose ``parameters`` hold
``binary_data_size``. Fixed-size datatypes are little-endian and row-major and are read with
``numpy.frombuffer`` (no copy); a ``BYTES`` element is a 4-byte little-endian length and
then its bytes. A response sends outputs the same way when asked (``binary_data`` on the
output or ``binary_data_output`` on the request), with the header length in the response's
``Inference-Header-Content-Length``.
"""

from __future__ import annotations

import struct

import numpy as np

from keel.errors import InvalidInput

from .protocol import Tensor, check_shape, element_count, element_size, numpy_dtype

__all__ = ["HEADER_LENGTH", "BinaryReader", "split_body", "tensor_to_bytes"]

HEADER_LENGTH = "inference-header-content-length"
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str | None) -> tuple[memoryview, memoryview | None]:
    """Return ``(json_part, binary_part)`` of a body; ``binary_part`` is None without header."""
    view = memoryview(body)
    if header_length is None:
        return view, None
    try:
        length = int(header_length)
    except ValueError:
        raise InvalidInput(
            f"Inference-Header-Content-Length must be an integer, not {header_length!r}"
        ) from None
    if length < 0 or length > len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length {length} is outside the body of {len(body)} bytes"
        )
    return view[:length], view[length:]


class BinaryReader:
    """Hands out consecutive slices of the binary part, one per binary input."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._offset = 0

    def read(self, name: str, datatype: str, shape: list[int], size: object) -> np.ndarray:
        """Return the next ``size`` bytes as the tensor ``name``, or raise ``InvalidInput``."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInput(f"input {name!r}: binary_data_size must be an integer >= 0")
        end = self._offset + size
        if end > len(self._data):
            raise InvalidInput(
                f"input {name!r}: binary_data_size {size} runs past the end of the body "
                f"({len(self._data) - self._offset} bytes left)"
            )
        chunk = self._data[self._offset : end]
        self._offset = end
        count = element_count(shape)
        if datatype == "BYTES":
            array = _read_bytes(name, chunk, count)
        else:
            itemsize = element_size(datatype)
            if size != count * itemsize:
                raise InvalidInput(
                    f"input {name!r}: shape {shape} of {datatype} needs {count * itemsize} "
                    f"bytes, binary_data_size is {size}"
                )
            array = np.frombuffer(chunk, dtype=numpy_dtype(datatype), count=count)
        return array.reshape(shape)

    def finish(self) -> None:
        """Raise ``InvalidInput`` if binary bytes were left over (sizes do not add up)."""
        left = len(self._data) - self._offset
        if left:
            raise InvalidInput(f"{left} bytes of binary tensor data belong to no input")


def _read_bytes(name: str, chunk: memoryview, count: int) -> np.ndarray:
    out = np.empty(count, dtype=object)
    offset, total = 0, len(chunk)
    for i in range(count):
        if offset + 4 > total:
            raise InvalidInput(f"input {name!r}: BYTES data ends before element {i}")
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += 4
        if offset + length > total:
            raise InvalidInput(f"input {name!r}: BYTES element {i} runs past its data")
        out[i] = bytes(chunk[offset : offset + length])
        offset += length
    if offset != total:
        raise InvalidInput(f"input {name!r}: BYTES data holds more than {count} elements")
    return out


def tensor_to_bytes(tensor: Tensor) -> bytes:
    """Return a tensor's binary form (little-endian, row-major; ``BYTES`` length-prefixed)."""
    data = np.asarray(tensor.data)
    check_shape(tensor.name, list(tensor.shape), data.size)
    if tensor.datatype == "BYTES":
        parts = []
        for value in data.reshape(-1):
            raw = value if isinstance(value, bytes) else str(value).encode()
            parts.append(_LENGTH.pack(len(raw)))
            parts.append(raw)
        return b"".join(parts)
    return np.ascontiguousarray(data, dtype=numpy_dtype(tensor.datatype)).tobytes()
