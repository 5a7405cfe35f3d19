"""What every blob store is: the ``BlobStore`` interface, blobs, and their digests.

``keel.store.artifacts`` (any fsspec URL) and ``keel.client.artifacts`` (a Keel server's
store over HTTP) both implement ``BlobStore``; both hash with BLAKE3 the same way.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

import blake3

from keel.errors import IntegrityError, InvalidInput

__all__ = ["CHUNK_SIZE", "Blob", "BlobStore"]

CHUNK_SIZE = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Blob:
    """A stored artifact: its BLAKE3 digest (64 lowercase hex) and its size in bytes."""

    digest: str
    size: int


def _hasher() -> Any:
    # AUTO lets blake3 spread large updates over the cores (~1.6x on 2 cores, 1 MiB chunks).
    return blake3.blake3(max_threads=blake3.blake3.AUTO)


def _check_digest(digest: object) -> str:
    # Digests become paths: anything but 64 lowercase hex ("../../etc", "") is refused here.
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise InvalidInput(
            f"not a BLAKE3 digest: {digest!r}; expected 64 lowercase hexadecimal characters"
        )
    return digest


def _corrupted(label: str, expected: str, actual: str) -> IntegrityError:
    return IntegrityError(
        f"artifact {label!r} is corrupted: expected blake3 digest {expected}, found {actual}"
    )


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed, verified blob storage: what tracking and the registry need.

    ``ArtifactStore`` (any fsspec URL) and the REST store of ``keel.client`` (through a
    Keel server) both implement it; every read is verified against its digest.
    """

    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        """Store a local file; return its digest and size."""

    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Blob:
        """Store what a binary stream yields; return its digest and size.

        With ``expected_digest``, content hashing to anything else is an
        ``IntegrityError`` and nothing is stored.
        """

    def put_bytes(self, data: bytes) -> Blob:
        """Store bytes; return their digest and size."""

    def exists(self, digest: str) -> bool:
        """Return whether a blob with this digest is stored."""

    def read_bytes(self, digest: str, *, name: str | None = None) -> bytes:
        """Return a small blob's bytes, verified."""

    def get_file(
        self, digest: str, dest: str | os.PathLike[str], *, name: str | None = None
    ) -> Path:
        """Write a blob to ``dest`` atomically, verified; return ``dest``."""

    def open_verified(
        self, digest: str, *, name: str | None = None
    ) -> AbstractContextManager[BinaryIO]:
        """Return a reader that raises ``IntegrityError`` at EOF on a digest mismatch."""
