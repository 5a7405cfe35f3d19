"""Columns in parallel threads: numpy's sorts and searches release the GIL, so per-column
work of a wide frame overlaps on several cores without copying the frame to processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["map_columns"]

T = TypeVar("T")
_MAX_WORKERS = 4  # beyond this the columns' memory traffic, not the cores, is the limit


def map_columns(work: Callable[[str], T], names: Sequence[str]) -> list[T]:
    """Return ``[work(name) for name in names]``, computed on up to four threads, in order."""
    workers = min(_MAX_WORKERS, os.cpu_count() or 1, len(names))
    if workers <= 1:
        return [work(name) for name in names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keel-drift") as pool:
        return list(pool.map(work, names))
