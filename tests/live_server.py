"""Real servers for tests: a Keel server in a thread, and ports for server processes.

``running_server`` serves uvicorn in a thread on 127.0.0.1, port 0 (the kernel picks a
free one, so nothing can take it between the choice and the bind).

A server started as a process (``keel serve``) must be told its port before it starts.
A port the kernel handed out for port 0 is the worst choice there: it comes from the
ephemeral range, where every other test's port-0 server and every outgoing connection
draws from too, and ``keel serve`` takes seconds to import and warm before it binds.
``free_port`` picks below that range instead, and ``start_until_ready`` starts a server
process on fresh ports again when it still lost its port (EADDRINUSE).
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["free_port", "running_server", "start_until_ready"]

HOST = "127.0.0.1"
# below the ephemeral range when the kernel's starts high enough (Linux: 32768)
_LOW_PORT = 10_000
_PICK_TRIES = 50
START_TRIES = 4
_IN_USE = ("address already in use", "errno 98", "port already in use")
_rng = random.SystemRandom()  # hypothesis reseeds the global random; workers must differ


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


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii")
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default; elsewhere a guess, and the bind below still checks


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now, chosen outside the ephemeral range.

    Falls back to a port the kernel picks when that range leaves no room below it.
    """
    low = _ephemeral_low()
    for _ in range(_PICK_TRIES if low > _LOW_PORT + 1000 else 0):
        port = _rng.randrange(_LOW_PORT, low)
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _lost_its_port(output: str) -> bool:
    text = output.lower()
    return any(marker in text for marker in _IN_USE)


def start_until_ready(
    command: Callable[[list[int]], list[str]],
    *,
    ports: int = 1,
    ready_path: str = "/v2/health/ready",
    timeout: float = 60.0,
    **popen: Any,
) -> tuple[subprocess.Popen[str], list[int]]:
    """Start ``command(ports)`` until ``http://127.0.0.1:<ports[0]><ready_path>`` answers 200.

    ``ports`` fresh ports from ``free_port`` are passed to ``command``; a process that
    exits because one of them was taken meanwhile (its output says the address is in use)
    is started again on new ones, up to ``START_TRIES`` times. Any other exit, or no
    answer within ``timeout``, fails the test with the process's output. ``popen`` goes to
    ``subprocess.Popen`` (``text=True`` is implied; pipe the output so it can be shown).
    The caller stops the process it gets back.
    """
    import httpx
    import pytest

    for attempt in range(1, START_TRIES + 1):
        chosen = [free_port() for _ in range(ports)]
        while len(set(chosen)) < ports:
            chosen = [free_port() for _ in range(ports)]
        process = subprocess.Popen(command(chosen), text=True, **popen)
        deadline = time.monotonic() + timeout
        url = f"http://{HOST}:{chosen[0]}{ready_path}"
        while process.poll() is None:
            try:
                if httpx.get(url, timeout=5.0).status_code == 200:
                    return process, chosen
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                process.kill()
                out, err = process.communicate(timeout=timeout)
                pytest.fail(f"server never became ready on {chosen}: {out or ''}{err or ''}")
            time.sleep(0.1)
        out, err = process.communicate(timeout=timeout)
        output = f"{out or ''}{err or ''}"
        if not _lost_its_port(output) or attempt == START_TRIES:
            pytest.fail(f"server exited with {process.returncode} on {chosen}: {output}")
    raise AssertionError("unreachable: the last attempt fails or returns")
