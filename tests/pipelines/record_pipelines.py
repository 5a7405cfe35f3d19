"""Module-level pipelines for the step-record tests (workers and subprocesses import them)."""

from __future__ import annotations

import time
from pathlib import Path

import keel.pipelines as kp


@kp.step
def first() -> int:
    return 1


@kp.step
def held_until(x: int, flag: str) -> int:
    # Runs until the test creates ``flag`` (the test looks at the records meanwhile, or
    # kills the pipeline's process); ``flag``.started says it began.
    Path(f"{flag}.started").touch()
    deadline = time.monotonic() + 120
    while not Path(flag).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{flag} never appeared")
        time.sleep(0.01)
    return x + 1


@kp.pipeline
def held(flag: str = ""):
    """first → held_until (which waits for the file ``flag``)."""
    held_until(first(), flag)


@kp.step
def leaf(i: int) -> int:
    return i


@kp.pipeline
def fan(n: int = 20):
    """``n`` independent trivial steps."""
    for i in range(n):
        leaf(i)
