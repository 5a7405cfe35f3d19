"""Model serving: the Open Inference Protocol v2 (REST and gRPC) over one registered version.

The transports (``keel.serving.rest``, ``keel.serving.grpc_server``) are thin: they decode a
request into the plain dataclasses of :mod:`keel.serving.protocol` and call an
:class:`~keel.serving.protocol.InferenceService`. Heavy imports happen only when a server is
built, so ``import keel.serving`` stays light: the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "InferenceRequest",
    "InferenceResponse",
    "InferenceService",
    "ModelMetadata",
    "ModelService",
    "RequestedOutput",
    "Tensor",
    "create_app",
    "load_runtime",
]

_EXPORTS = {
    "InferenceRequest": "keel.serving.protocol",
    "InferenceResponse": "keel.serving.protocol",
    "InferenceService": "keel.serving.protocol",
    "ModelMetadata": "keel.serving.protocol",
    "ModelService": "keel.serving.service",
    "RequestedOutput": "keel.serving.protocol",
    "Tensor": "keel.serving.protocol",
    "create_app": "keel.serving.rest",
    "load_runtime": "keel.serving.runtime",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
