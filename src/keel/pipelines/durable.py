"""Step outputs made durable in groups, in the background, before they are recorded.

A worker writes a step's output without fsync (``ArtifactStore.put_bytes(durable=False)``)
and the engine hands the finished step here. Its record — what makes the output a cache
hit and what ``resume`` reuses — is written only once the output is on stable storage, so
no record ever points at a blob a crash could leave torn or missing. The flushes overlap
the steps that run meanwhile: while one group is being flushed, the steps finishing in
the meantime form the next group, so a chain of quick steps pays one flush per group, not
two fsyncs per step, and 1,000 outputs of a fan-out are one ``syncfs``.

A crash before a group is flushed loses only those steps' records: they re-run on resume,
as failed steps do. Downstream steps do not wait for the flush: they read the upstream
output from the same machine's files, verified against its digest as every read is.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from keel.store.artifacts import ArtifactStore

__all__ = ["OutputFlusher"]

T = TypeVar("T")


class OutputFlusher(Generic[T]):
    """Items whose blobs must be durable before they are released, flushed in groups.

    ``add`` queues an item with the digests it needs; ``released`` returns, oldest first,
    the items whose group is durable, starting the next group if one waits. Every call
    comes from one thread (the engine's); the flushes run on a thread of their own.
    """

    def __init__(self, blobs: ArtifactStore) -> None:
        self._blobs = blobs
        self._waiting: deque[tuple[T, tuple[str, ...]]] = deque()
        self._flight: Future[None] | None = None
        self._flying: list[T] = []
        self._pool: ThreadPoolExecutor | None = None

    @property
    def busy(self) -> bool:
        """Whether any item waits for its flush."""
        return bool(self._waiting) or self._flight is not None

    def add(self, item: T, digests: tuple[str, ...]) -> None:
        """Queue ``item``, released once every blob in ``digests`` is durable."""
        self._waiting.append((item, digests))
        if self._flight is None:
            self._launch()

    def released(self, *, block: bool = False) -> list[T]:
        """Return the items made durable since the last call (all of them, if ``block``).

        A failed flush raises its error (``StoreUnavailable``, ``IntegrityError``); its
        items are not released.
        """
        out: list[T] = []
        while self._flight is not None and (block or self._flight.done()):
            flight, items = self._flight, self._flying
            self._flight, self._flying = None, []
            flight.result()  # raises the flush's error
            out.extend(items)
            if self._waiting:
                self._launch()
        return out

    def close(self) -> None:
        """Stop the flushing thread (a flush in progress finishes first)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _launch(self) -> None:
        group = list(self._waiting)
        self._waiting.clear()
        digests = [d for _, ds in group for d in ds]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="keel-outputs-flush")
        self._flying = [item for item, _ in group]
        self._flight = self._pool.submit(self._blobs.make_durable, digests)
