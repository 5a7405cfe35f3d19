"""REST routes for content-addressed blobs under /api/v1, streamed in 1 MiB chunks.

``PUT /blobs/{digest}`` streams the request body into the artifact store, which verifies
the digest before publishing; ``GET`` streams the blob back through the store's verified
reader, so both ends check the bytes (the client hashes what it receives too).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from keel.errors import IntegrityError, InvalidInput, NotFound
from keel.governance.auth import Role
from keel.server.auth import ANY_OBJECT, require
from keel.server.deps import get_stores
from keel.store.artifacts import CHUNK_SIZE
from keel.stores import Stores

__all__ = ["router"]

router = APIRouter(tags=["blobs"])
log = logging.getLogger("keel.server")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class DigestMismatch(IntegrityError):
    """An upload whose bytes do not hash to the digest in its URL (the caller's fault)."""

    http_status = 400


def _digest(digest: str) -> str:
    if _DIGEST.fullmatch(digest) is None:
        raise InvalidInput(
            f"not a BLAKE3 digest: {digest[:80]!r}; expected 64 lowercase hexadecimal characters"
        )
    return digest


class _BodyReader(io.RawIOBase):
    """A blocking reader over an ASGI request body, for use in a worker thread."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes of the body (0 at its end)."""
        while not self._pending and not self._done:
            try:
                self._pending = anyio.from_thread.run(self._chunks.__anext__)
            except StopAsyncIteration:
                self._done = True
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


@router.put("/blobs/{digest}", dependencies=[require(Role.EDITOR, on=ANY_OBJECT)])
async def put_blob(digest: str, request: Request, stores: Stores = Depends(get_stores)) -> Any:
    """Return ``{"digest", "size"}`` once the streamed body is stored under its digest.

    A body that does not hash to ``digest`` is a 400 ``INTEGRITY_ERROR`` and nothing is
    stored.
    """
    expected = _digest(digest)
    reader = io.BufferedReader(_BodyReader(request.stream().__aiter__()), CHUNK_SIZE)
    try:
        blob = await run_in_threadpool(
            stores.artifacts.put_stream,
            reader,  # type: ignore[arg-type]
            expected_digest=expected,
        )
    except IntegrityError as exc:
        raise DigestMismatch(exc.message) from None
    return {"digest": blob.digest, "size": blob.size}


@router.head("/blobs/{digest}")
def head_blob(digest: str, stores: Stores = Depends(get_stores)) -> Response:
    """Return 200 if the blob is stored, 404 if not (no body either way)."""
    found = stores.artifacts.exists(_digest(digest))
    return Response(status_code=200 if found else 404)


@router.get("/blobs/{digest}")
def get_blob(digest: str, stores: Stores = Depends(get_stores)) -> Response:
    """Return the blob's bytes, streamed in 1 MiB chunks; 404 if it is not stored."""
    digest = _digest(digest)
    artifacts = stores.artifacts
    if not artifacts.exists(digest):
        raise NotFound(f"no blob with digest {digest}")
    headers = {}
    size = getattr(artifacts, "size", None)
    if size is not None:
        headers["Content-Length"] = str(size(digest))

    def chunks() -> Iterator[bytes]:
        try:
            with artifacts.open_verified(digest) as f:
                # read1: one read of the store per chunk, so every byte is yielded before
                # the reader checks the digest at EOF (read() would raise first).
                while chunk := f.read1(CHUNK_SIZE):
                    yield chunk
        except IntegrityError as exc:
            # Every byte is already on its way: the client's own check refuses them.
            log.exception("served a corrupted blob: %s", exc.message)

    return StreamingResponse(chunks(), headers=headers, media_type="application/octet-stream")
