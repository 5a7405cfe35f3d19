"""Checks on names, keys and values before anything reaches a store."""

from __future__ import annotations

import math
import re
from numbers import Integral, Real
from typing import Any

from keel.errors import InvalidInput

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PARAM_LENGTH",
    "MAX_TAG_LENGTH",
    "check_id",
    "check_key",
    "check_metric_value",
    "check_name",
    "check_step",
    "check_timestamp",
    "param_value",
    "tag_value",
]

MAX_NAME_LENGTH = 256
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
INT64_MAX = 2**63 - 1

_KEY = re.compile(r"^[\w\-./: ]+$")
_ID = re.compile(r"^[0-9a-f]{32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(kind: str, name: Any) -> str:
    """Return ``name`` stripped, or raise ``InvalidInput`` saying what a name may be."""
    if not isinstance(name, str):
        raise InvalidInput(f"{kind} name must be a string, got {type(name).__name__}")
    stripped = name.strip()
    if not stripped:
        raise InvalidInput(f"{kind} name must not be empty")
    if len(stripped) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{kind} name is {len(stripped)} characters; the limit is {MAX_NAME_LENGTH}"
        )
    if _CONTROL.search(stripped):
        raise InvalidInput(f"{kind} name {stripped!r} contains control characters")
    return stripped


def check_key(kind: str, key: Any) -> str:
    """Return ``key`` if it is a valid param, metric or tag key, else raise ``InvalidInput``."""
    if not isinstance(key, str):
        raise InvalidInput(f"{kind} key must be a string, got {type(key).__name__}")
    if not key or key != key.strip():
        raise InvalidInput(f"{kind} key {key!r} must be non-empty with no surrounding spaces")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"{kind} key {key[:40]!r}… is {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    if not _KEY.match(key) or ".." in key.split("/") or key.startswith("/"):
        raise InvalidInput(
            f"{kind} key {key!r} may contain only letters, digits, spaces and _ - . / :"
        )
    return key


def check_id(kind: str, value: Any) -> str:
    """Return ``value`` if it looks like a Keel id (32 hex characters), else raise."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f"{kind} id must be 32 lowercase hex characters, got {value!r}")
    return value


def check_metric_value(key: str, value: Any) -> float:
    """Return ``value`` as a float (NaN and ±inf allowed), or raise ``InvalidInput``."""
    if isinstance(value, bool) or not isinstance(value, Real):
        try:
            if isinstance(value, bool | str | bytes) or value is None:
                raise TypeError
            return float(value)  # numpy scalars, Decimal, 0-d arrays
        except (TypeError, ValueError):
            raise InvalidInput(
                f"metric {key!r} must be a number, got {type(value).__name__} {value!r:.60}"
            ) from None
    return float(value)


def check_step(step: Any) -> int:
    """Return ``step`` as an int in the 64-bit range, or raise ``InvalidInput``."""
    if isinstance(step, bool) or not isinstance(step, Integral):
        raise InvalidInput(f"metric step must be an integer, got {type(step).__name__}")
    step = int(step)
    if not -INT64_MAX <= step <= INT64_MAX:
        raise InvalidInput(f"metric step {step} is outside the 64-bit range")
    return step


def check_timestamp(timestamp: Any) -> int:
    """Return ``timestamp`` (ms since the epoch) as an int, or raise ``InvalidInput``."""
    if isinstance(timestamp, bool) or not isinstance(timestamp, Integral | float):
        raise InvalidInput(f"timestamp must be milliseconds as a number, got {timestamp!r}")
    if isinstance(timestamp, float) and not math.isfinite(timestamp):
        raise InvalidInput("timestamp must be finite")
    value = int(timestamp)
    if not 0 <= value <= INT64_MAX:
        raise InvalidInput(f"timestamp {value} is outside the valid range")
    return value


def _stringify(kind: str, key: str, value: Any, limit: int) -> str:
    if value is None:
        raise InvalidInput(f"{kind} {key!r} has no value (None)")
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        raise InvalidInput(f"{kind} {key!r} is {len(text)} characters long; the limit is {limit}")
    return text


def param_value(key: str, value: Any) -> str:
    """Return a param value as the string Keel stores (``str(value)``), or raise.

    ``None`` is stored as "None", as scikit-learn's ``get_params()`` is full of them.
    """
    return _stringify("param", key, "None" if value is None else value, MAX_PARAM_LENGTH)


def tag_value(key: str, value: Any) -> str:
    """Return a tag value as the string Keel stores, or raise."""
    return _stringify("tag", key, value, MAX_TAG_LENGTH)
