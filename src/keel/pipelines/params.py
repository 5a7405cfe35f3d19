"""Parameters of steps and pipelines: typed from annotations, JSON-able, canonical.

A parameter is any argument that is not another step's output. It must be a JSON value
(None, bool, int, float, str, and lists or string-keyed dicts of those), as in ZenML,
because it is recorded on the run and hashed into the cache key; data travels between steps
as outputs instead. When the function annotates the argument, the value is checked against
the annotation with pydantic in strict mode (an ``int`` is a ``float``, ``"3"`` is not an
``int``); ``--param k=v`` text from the CLI is converted leniently first.
"""

from __future__ import annotations

import functools
import inspect
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from keel.errors import InvalidInput

__all__ = [
    "MAX_PARAM_BYTES",
    "canonical_json",
    "check_param",
    "coerce_text",
    "is_json_value",
    "type_hints",
]

MAX_PARAM_BYTES = 6000  # what a run param holds (keel.tracking.validation.MAX_PARAM_LENGTH)
_MAX_DEPTH = 32
_EMPTY = inspect.Parameter.empty


def is_json_value(value: Any, depth: int = 0) -> bool:
    """Return whether ``value`` is a JSON value that survives a round trip unchanged."""
    if depth > _MAX_DEPTH:
        return False
    kind = type(value)
    if value is None or kind in (bool, str):
        return True
    if kind is int:
        return -(2**63) <= value < 2**64  # what orjson writes exactly
    if kind is float:
        return math.isfinite(value)
    if kind in (list, tuple):
        return all(is_json_value(v, depth + 1) for v in value)
    if kind is dict:
        return all(type(k) is str and is_json_value(v, depth + 1) for k, v in value.items())
    return False


def _not_json(value: Any, depth: int = 0) -> str:
    """Return what in ``value`` ``is_json_value`` refuses, for the error message."""
    kind = type(value)
    if depth > _MAX_DEPTH:
        return f"lists or dicts nested deeper than {_MAX_DEPTH}"
    if kind is float:
        return f"{value!r} (NaN and infinities have no JSON form)"
    if kind is int:
        return "an integer outside the 64-bit range"
    if kind in (list, tuple):
        return next(_not_json(v, depth + 1) for v in value if not is_json_value(v, depth + 1))
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"a dict key of type {type(key).__name__} ({_short(key)})"
            if not is_json_value(item, depth + 1):
                return _not_json(item, depth + 1)
    return f"a {kind.__name__}"


def canonical_json(value: Any) -> bytes:
    """Return ``value`` as compact JSON with sorted keys (what cache keys hash)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Return the function's resolved annotations (empty where they do not resolve)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - an unresolvable forward reference: check nothing
        return {}


@functools.lru_cache(maxsize=512)
def _adapter(annotation: Any) -> Any:
    from pydantic import TypeAdapter

    try:
        return TypeAdapter(annotation)
    except Exception:  # noqa: BLE001 - a class pydantic has no schema for: no check
        return None


def _adapter_for(annotation: Any) -> Any:
    try:
        return _adapter(annotation)
    except TypeError:  # an unhashable annotation object
        return None


def check_param(owner: str, name: str, value: Any, annotation: Any = _EMPTY) -> Any:
    """Return ``value`` if it is a valid parameter ``name`` of ``owner``, else raise.

    ``owner`` is "step 'fit'" or "pipeline 'train'": every message names it.
    """
    if not is_json_value(value):
        raise InvalidInput(
            f"{owner}: parameter {name!r} is not a JSON value: it holds {_not_json(value)}; "
            "a parameter is None, bool, int, finite float, str, or lists and str-keyed "
            "dicts of those; pass data between steps as step outputs"
        )
    if len(canonical_json(value)) > MAX_PARAM_BYTES:
        raise InvalidInput(
            f"{owner}: parameter {name!r} is over {MAX_PARAM_BYTES} bytes as JSON; pass "
            "large values as a step output or a declared input file"
        )
    if annotation is _EMPTY or annotation is Any:
        return value
    adapter = _adapter_for(annotation)
    if adapter is None:
        return value
    from pydantic import ValidationError

    try:
        adapter.validate_python(value, strict=True)
    except ValidationError as exc:
        problem = exc.errors()[0].get("msg", "wrong type") if exc.errors() else "wrong type"
        raise InvalidInput(
            f"{owner}: parameter {name!r} must be {_type_name(annotation)}, got "
            f"{type(value).__name__} {_short(value)} ({problem})"
        ) from None
    return value


def coerce_text(owner: str, name: str, text: str, annotation: Any = _EMPTY) -> Any:
    """Return the value CLI text ``text`` stands for, as parameter ``name`` of ``owner``.

    A ``str`` parameter takes the text as it is; otherwise the text is read as JSON when
    it is JSON (``3``, ``0.5``, ``true``, ``[1, 2]``) and as a string when not, then
    converted leniently to the annotation (``"3"`` → 3 for an ``int``).
    """
    if annotation is str:
        value: Any = text
    else:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = text
    if annotation is not _EMPTY and annotation is not Any:
        adapter = _adapter_for(annotation)
        if adapter is not None:
            from pydantic import ValidationError

            try:
                value = adapter.validate_python(value)
            except ValidationError as exc:
                problem = exc.errors()[0].get("msg", "wrong type") if exc.errors() else ""
                raise InvalidInput(
                    f"{owner}: --param {name}={_short(text)} is not {_type_name(annotation)} "
                    f"({problem})"
                ) from None
    return check_param(owner, name, value, annotation)


def bind_defaults(sig: inspect.Signature, values: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``values`` completed with the signature's defaults, in signature order."""
    out = {}
    for name, param in sig.parameters.items():
        if name in values:
            out[name] = values[name]
        elif param.default is not _EMPTY:
            out[name] = param.default
    return out


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"
