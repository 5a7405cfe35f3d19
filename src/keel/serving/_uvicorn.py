"""uvicorn plumbing for Keel's servers: TCP_NODELAY on every connection, thread runner.

The one place that configures uvicorn and runs it in a thread of this process: ``keel
serve`` uses :func:`config` (and :class:`NoDelayHTTPProtocol` for its worker processes),
the model-server tests use :func:`serving`, and ``keel.server.serving`` (the tracking
server in a thread, for ``keel demo --serve`` and tests) is :func:`serving` with the
lifespan off.

asyncio already sets TCP_NODELAY on the transports it creates, but the field notes in
DESIGN.md measured 40–50 ms stalls on keep-alive connections under several uvicorn workers;
setting it on each accepted socket ourselves makes it independent of the event loop and
of how the listening socket was handed to a worker.
"""

from __future__ import annotations

import contextlib
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


def config(app: Any, *, host: str, port: int, lifespan: str = "on", **options: Any) -> Any:
    """A uvicorn ``Config``: quiet, TCP_NODELAY, lifespan on unless told (``"off"``)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=NoDelayHTTPProtocol,
        log_level="warning",
        access_log=False,
        lifespan=lifespan,
        **options,
    )


@contextmanager
def serving(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    timeout: float = 20.0,
    lifespan: str = "on",
    what: str = "the model server",
    thread_name: str = "keel-model-server",
) -> Iterator[str]:
    """Serve ``app`` in a background thread on ``host:port`` (0: a free port); yield its URL.

    The server stops, and its thread is joined, when the block exits. ``what`` names the
    server in the ``StoreUnavailable`` raised when it does not start within ``timeout``.
    """
    import uvicorn

    server = uvicorn.Server(config(app, host=host, port=port, lifespan=lifespan))

    def run() -> None:
        # uvicorn exits (SystemExit) when it cannot bind: end the thread quietly, the
        # caller raises StoreUnavailable below
        with contextlib.suppress(SystemExit):
            server.run()

    thread = threading.Thread(target=run, name=thread_name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            raise StoreUnavailable(f"{what} could not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout)
