"""The one clock Keel stores use: integer milliseconds since the epoch."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Return the current time in whole milliseconds since the epoch."""
    return int(time.time() * 1000)
