"""``StorableJson``: a free-form JSON field the server can store and later send back.

Signatures, input examples and dataset schemas or profiles are stored as sent and returned
in every later read. orjson, the response encoder, cannot write integers beyond 64 bits, so
such a value is refused with a 400 when it arrives instead of failing each read with a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import AfterValidator

__all__ = ["StorableJson", "storable_json"]


def storable_json(value: Any) -> Any:
    """Return ``value`` unchanged if the response encoder can write it; else ValueError."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"not storable as JSON: {exc}") from None
    return value


StorableJson = Annotated[Any, AfterValidator(storable_json)]
