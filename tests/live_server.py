"""A real Keel server for tests: uvicorn in a thread, on 127.0.0.1 and a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["running_server"]


@contextmanager
def running_server(home: Path, *, timeout: float = 20.0) -> Iterator[str]:
    """Serve a Keel server whose stores live in ``home``; yield its base URL, then stop it."""
    import uvicorn

    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(home))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="keel-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test Keel server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
