"""What every benchmark script shares: argument parsing, timing, and the one JSON result line.

Standard library only, because the scripts run in two interpreters: Keel's virtualenv and
MLflow's (``benchmarks/.venvs/mlflow``), where ``keel`` is not importable and must not be.

A script prints exactly one JSON object on its real standard output, as its last line.
Anything else printed while it runs (MLflow's logging, warnings) is sent to standard error,
so the runner never has to guess which line is the result. A script that finds its own
measurement wrong (fewer rows than it logged, a search returning the wrong count) prints an
``{"ok": false, "error": …}`` line and exits non-zero: a benchmark that silently measures
the wrong thing is worse than none.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "BenchmarkError",
    "Timer",
    "check",
    "distributions",
    "emit",
    "environment",
    "main",
    "median",
    "parse_args",
    "percentile",
]

# Everything a script prints goes to stderr except the result line.
_RESULT_STREAM = sys.stdout
sys.stdout = sys.stderr


class BenchmarkError(RuntimeError):
    """The measurement is not valid (a count or an ordering check failed)."""


def check(condition: bool, message: str) -> None:
    """Raise BenchmarkError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise BenchmarkError(message)


class Timer:
    """``with Timer() as t: …`` then ``t.seconds``; perf_counter based."""

    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


def percentile(values: Iterable[float], q: float) -> float:
    """Return the q-th percentile (0–100) of ``values`` by linear interpolation."""
    data = sorted(values)
    if not data:
        raise ValueError("percentile of no values")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def distributions(*names: str) -> dict[str, str]:
    """Return the installed versions of the named distributions (missing ones omitted)."""
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def environment(*packages: str) -> dict[str, Any]:
    """Describe the interpreter a script ran in."""
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "sqlite": sqlite3.sqlite_version,
        "packages": distributions(*packages),
    }


def parse_args(
    description: str, systems: Iterable[str], sizes: dict[str, int]
) -> argparse.Namespace:
    """Parse ``--system``, ``--workdir`` and one ``--<size>`` option per entry of ``sizes``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--system", required=True, choices=list(systems))
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="empty folder for databases and artifacts (default: the working directory)",
    )
    parser.add_argument("--seed", type=int, default=20261125)
    for name, default in sizes.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    args = parser.parse_args()
    args.workdir = (args.workdir or Path.cwd()).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for name in sizes:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def emit(payload: dict[str, Any]) -> None:
    """Write ``payload`` as the one JSON result line on the real standard output."""
    _RESULT_STREAM.write(json.dumps(payload, sort_keys=True, allow_nan=False) + "\n")
    _RESULT_STREAM.flush()


def main(
    benchmark: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace], dict[str, Any]],
    packages: Iterable[str] = (),
) -> None:
    """Run ``run(args)``, emit its result (or the error) as JSON, and exit accordingly."""
    base: dict[str, Any] = {"benchmark": benchmark, "system": args.system}
    try:
        result = run(args)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        traceback.print_exc()
        base.update(
            ok=False,
            error=f"{type(exc).__name__}: {exc}",
            env=environment(*packages),
        )
        emit(base)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    base.update(ok=True, env=environment(*packages), **result)
    emit(base)


def median(values: Iterable[float]) -> float:
    """Return the median of ``values``."""
    return statistics.median(list(values))
