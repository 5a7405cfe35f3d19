"""Shared pieces of the schedule and trigger tests: a store on SQLite or PostgreSQL, and
a pipeline file whose one step appends its start and end to a JSON-lines file."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FLOW = textwrap.dedent(
    """
    import json, os, time
    import keel.pipelines as kp

    @kp.step(no_cache=True)
    def record(path: str, sleep: float, tag: str) -> int:
        start = time.time()
        time.sleep(sleep)
        with open(path, "a") as f:
            line = {"pid": os.getpid(), "start": start, "end": time.time(), "tag": tag}
            f.write(json.dumps(line) + "\\n")
        return 1

    @kp.step(no_cache=True)
    def explode(path: str) -> int:
        raise RuntimeError("the step exploded")

    @kp.pipeline
    def rec(path: str = "out.jsonl", sleep: float = 0.0, tag: str = ""):
        record(path, sleep, tag)

    @kp.pipeline
    def broken(path: str = "out.jsonl"):
        explode(path)
    """
)


SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def open_sql_stores(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Return the stores of the test's fresh home, on SQLite or on a new PostgreSQL
    database (``request.param``); a module's ``sql_stores`` fixture calls this."""
    from tests.conftest import _reset

    if request.param == "postgres":
        monkeypatch.setenv("KEEL_TRACKING_URI", request.getfixturevalue("postgres_keel_url"))
        _reset()
    from keel.stores import current_stores

    return current_stores()


def write_flow(folder: Path) -> Path:
    """Return the path of the recording pipeline file (``flow.py:rec``, ``flow.py:broken``)."""
    path = folder / "flows" / "flow.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(FLOW)
    return path


def records(path: Path) -> list[dict[str, Any]]:
    """Return the lines the recording step appended, in order."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def wait_for(check: Callable[[], Any], timeout: float = 60.0, step: float = 0.1) -> Any:
    """Return ``check()``'s first truthy value, polling up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(step)
