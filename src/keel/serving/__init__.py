"""Model serving: the Open Inference Protocol v2 (REST and gRPC) over one registered version.

The transports (``keel.serving.rest``, ``keel.serving.grpc_server``) are thin: they decode a
request into the plain dataclasses of :mod:`keel.serving.protocol` and call an
:class:`~keel.serving.protocol.InferenceService`. Heavy imports happen only when a server is
built, so ``import keel.serving`` stays light.
"""

from __future__ import annotations
