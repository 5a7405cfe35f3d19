"""Runs a Keel server in a background thread of this process (demo --serve, tests).

The runner is the model server's (``keel.serving._uvicorn.serving``: quiet uvicorn,
TCP_NODELAY, stopped and joined on exit); the Keel server's app runs with the lifespan
off, as it always has here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["serving"]


@contextmanager
def serving(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on ``host:port`` (0: a free port); yield the base URL.

    The server stops when the block exits.
    """
    from keel.serving._uvicorn import serving as run

    options = {"lifespan": "off", "what": "the Keel server", "thread_name": "keel-server"}
    with run(app, host=host, port=port, timeout=timeout, **options) as url:
        yield url
