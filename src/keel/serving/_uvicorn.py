"""uvicorn plumbing for the model server: TCP_NODELAY on every connection, thread runner.

asyncio already sets TCP_NODELAY on the transports it creates, but the field notes in
DESIGN.md measured 40–50 ms stalls on keep-alive connections under several uvicorn workers;
setting it on each accepted socket ourselves makes it independent of the event loop and
of how the listening socket was handed to a worker.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from keel.errors import StoreUnavailable

try:  # httptools is the faster parser; h11 is uvicorn's pure-Python fallback
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # pragma: no cover - depends on the installed extras
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base  # type: ignore[assignment]

__all__ = ["NoDelayHTTPProtocol", "config", "serving", "set_nodelay"]


class NoDelayHTTPProtocol(_Base):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol with Nagle's algorithm off on the connection's socket."""

    def connection_made(self, transport: Any) -> None:
        set_nodelay(transport)
        super().connection_made(transport)


def set_nodelay(transport: Any) -> None:
    """Turn Nagle's algorithm off on a TCP transport's socket (others are left alone)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def config(app: Any, *, host: str, port: int, **options: Any) -> Any:
    """A uvicorn ``Config`` for the model server (quiet, TCP_NODELAY, lifespan on)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=NoDelayHTTPProtocol,
        log_level="warning",
        access_log=False,
        lifespan="on",
        **options,
    )


@contextmanager
def serving(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0
) -> Iterator[str]:
    """Serve ``app`` in a background thread on ``host:port`` (0: a free port); yield its URL."""
    import uvicorn

    server = uvicorn.Server(config(app, host=host, port=port))
    thread = threading.Thread(target=server.run, name="keel-model-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            raise StoreUnavailable(f"the model server could not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
