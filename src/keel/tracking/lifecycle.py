"""Which runs this process has open, and ending them when the process exits.

Each thread keeps a stack of its active runs (innermost last); ``_open_runs`` holds every
``ActiveRun`` not yet ended, across threads, so the exit hook can flush and close them.
"""

from __future__ import annotations

import atexit
import sys
import threading
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError
from keel.tracking.entities import RunStatus

if TYPE_CHECKING:
    from keel.tracking.fluent import ActiveRun

__all__: list[str] = []

_local = threading.local()
_open_runs: set[ActiveRun] = set()
_open_lock = threading.Lock()


def _stack() -> list[ActiveRun]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


_crashed = False
_hooks_installed = False


def _install_exit_hooks() -> None:
    """Once per process: end open runs at exit, failed if an exception escaped."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def note_crash(*args: Any) -> None:
        global _crashed
        _crashed = True
        previous(*args)

    sys.excepthook = note_crash
    atexit.register(_end_open_runs)


def _end_open_runs() -> None:
    # Runs still open at exit are flushed and closed; an uncaught exception fails them.
    status = RunStatus.FAILED if _crashed else RunStatus.FINISHED
    with _open_lock:
        runs = list(_open_runs)
    for run in runs:
        try:
            run.end(status)
        except KeelError as exc:
            print(f"keel: could not end run {run.run_id} at exit: {exc}", file=sys.stderr)
