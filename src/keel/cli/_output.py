"""How the CLI prints: Rich consoles, one JSON document for scripts, value formatting."""

from __future__ import annotations

import math
import sys
import time
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.text import Text

from keel.cli._table import Kind, Table

__all__ = [
    "JsonOption",
    "Kind",
    "Table",
    "duration",
    "err_console",
    "number",
    "out_console",
    "plain",
    "print_error",
    "print_json",
    "short_id",
    "status_text",
    "timestamp",
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (for scripts).")
]

_STATUS_STYLES = {
    "running": "bold cyan",
    "finished": "green",
    "failed": "bold red",
    "killed": "magenta",
}


def out_console() -> Console:
    """Return a console on the current stdout (looked up per call, so test runners work)."""
    return Console(file=sys.stdout, highlight=False)


def err_console() -> Console:
    """Return a console on the current stderr."""
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def print_json(document: Any) -> None:
    """Write ``document`` as one indented JSON document on stdout, and nothing else."""
    data = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
    sys.stdout.write(data.decode() + "\n")
    sys.stdout.flush()


def print_error(message: str) -> None:
    """Print ``error: <message>`` on stderr, red label, never wrapped or markup-parsed."""
    err_console().print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def number(value: Any) -> str:
    """Format a metric or param value: floats to 6 significant digits, nan/inf/-inf kept."""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.6g}"
    return "—" if value is None else str(value)


def timestamp(ms: int | None) -> str:
    """Format milliseconds since the epoch as local time, or a dash."""
    if ms is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def duration(ms: int | None) -> str:
    """Format a duration in milliseconds compactly (``850ms``, ``12.3s``, ``4m 05s``)."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def short_id(value: str | None) -> str:
    """Return the first 8 characters of an id (enough to tell runs apart in a table)."""
    return "—" if not value else value[:8]


def plain(value: Any, style: str = "") -> Text:
    """Return ``value`` as Rich text that is never parsed as markup (names may hold '[')."""
    return Text("—" if value is None else str(value), style=style)


def status_text(status: str) -> Text:
    """Return a run status coloured by what it means."""
    return Text(status, style=_STATUS_STYLES.get(status, ""))
