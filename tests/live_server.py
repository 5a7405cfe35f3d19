"""A real Keel server for tests: uvicorn in a thread, on 127.0.0.1 and a free port."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["running_server"]


@contextmanager
def running_server(home: Path, *, auth: bool = False) -> Iterator[str]:
    """Serve a Keel server whose stores live in ``home``; yield its base URL, then stop it.

    ``auth`` makes it demand API tokens (``create_app(auth=True)``).
    """
    from keel.config import load_settings
    from keel.server import create_app
    from keel.server.serving import serving

    with serving(create_app(settings=load_settings(home), auth=auth)) as url:
        yield url
