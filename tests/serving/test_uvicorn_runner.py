"""One uvicorn thread runner for both servers: ``keel.serving._uvicorn.serving`` (the model
server, lifespan on) and ``keel.server.serving.serving`` (the Keel server, lifespan off)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from oip_support import WAIT_S
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keel.errors import StoreUnavailable
from keel.server.serving import serving as keel_server_serving
from keel.serving._uvicorn import serving as model_server_serving

Runner = Callable[..., AbstractContextManager[str]]


def _app(events: list[str]) -> Starlette:
    """An app that records its lifespan and answers with the thread serving it."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    async def probe(request: Request) -> JSONResponse:
        return JSONResponse({"thread": threading.current_thread().name})

    return Starlette(routes=[Route("/probe", probe)], lifespan=lifespan)


@pytest.mark.parametrize(
    ("runner", "lifespan", "thread"),
    [
        (model_server_serving, ["startup", "shutdown"], "keel-model-server"),
        (keel_server_serving, [], "keel-server"),
    ],
    ids=["model-server", "keel-server"],
)
def test_each_caller_keeps_its_lifespan_and_stops_its_thread(
    runner: Runner, lifespan: list[str], thread: str
) -> None:
    events: list[str] = []
    # Other tests in this worker may keep servers of the same thread name running (module
    # fixtures), so the thread this runner started is told apart from those by identity.
    before = set(threading.enumerate())
    with runner(_app(events)) as url:
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/probe", timeout=WAIT_S)
        assert response.json() == {"thread": thread}
        started = [t for t in threading.enumerate() if t not in before and t.name == thread]
        assert len(started) == 1
    assert events == lifespan
    assert not started[0].is_alive()  # joined on exit


@pytest.mark.parametrize(
    ("runner", "what"),
    [(model_server_serving, "the model server"), (keel_server_serving, "the Keel server")],
    ids=["model-server", "keel-server"],
)
def test_a_port_in_use_is_a_clear_error(runner: Runner, what: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StoreUnavailable, match=f"{what} could not start on 127.0.0.1:{port}"):
            with runner(_app([]), port=port, timeout=WAIT_S):
                pass
