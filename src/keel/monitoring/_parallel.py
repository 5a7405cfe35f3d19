"""Columns in parallel threads: numpy's sorts and searches release the GIL, so per-column
work of a wide frame overlaps on several cores without copying the frame to processes.

A column's two sides (reference and current) are prepared on two threads at once rather
than two columns side by side: each side's working copy is what a column holds in
memory, so two cores then hold one column's pair instead of two columns' pairs — half the
working memory for the same parallelism.

Below ``SERIAL_ROWS`` rows a side the caller does the columns on its own thread instead
(``keel.monitoring._drift``): there the threads save little time (~10 % at 100,000 rows
on two cores) and cost memory that outlives them (each thread's malloc arena keeps what
it freed), and one column at a time lets the current side use the reference's sorted
copy rather than make its own (``keel.monitoring._streamed``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["SERIAL_ROWS", "map_column_sides", "map_columns"]

A = TypeVar("A")
B = TypeVar("B")
T = TypeVar("T")
_MAX_WORKERS = 4  # beyond this the columns' memory traffic, not the cores, is the limit
SERIAL_ROWS = 250_000


def _workers(tasks: int) -> int:
    return min(_MAX_WORKERS, os.cpu_count() or 1, tasks)


def map_columns(work: Callable[[str], T], names: Sequence[str], *, threads: bool = True) -> list[T]:
    """Return ``[work(name) for name in names]``, computed on up to four threads, in order.

    For columns with one heavy side (the current data against a stored profile): each
    column then holds one working copy, so columns side by side cost what one column's
    two sides do in ``map_column_sides``. ``threads=False``: all on the calling thread.
    """
    workers = _workers(len(names)) if threads else 1
    if workers <= 1:
        return [work(name) for name in names]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keel-drift") as pool:
        return list(pool.map(work, names))


def map_column_sides(
    first: Callable[[str], A],
    second: Callable[[str], B],
    combine: Callable[[str, A, B], T],
    names: Sequence[str],
) -> list[T]:
    """Return ``[combine(n, first(n), second(n)) for n in names]``, in order.

    ``first`` and ``second`` of a column run on two threads at once, and with four cores
    two columns are in flight; ``combine`` runs once both sides of its column are done.
    An exception from any call propagates (the first one raised wins).
    """
    workers = _workers(2 * len(names))
    if workers <= 1:
        return [combine(name, first(name), second(name)) for name in names]
    from concurrent.futures import ThreadPoolExecutor

    lanes = workers // 2  # columns in flight, each on two threads
    with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="keel-drift-ref") as helpers:

        def column(name: str) -> T:
            other = helpers.submit(first, name)
            try:
                mine = second(name)
            except BaseException:
                other.cancel()
                raise
            return combine(name, other.result(), mine)

        if lanes == 1:
            return [column(name) for name in names]
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="keel-drift") as pool:
            return list(pool.map(column, names))
