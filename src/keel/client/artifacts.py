"""``RestBlobStore``: content-addressed blobs through a Keel server, streamed both ways.

Uploads are hashed (BLAKE3) first, skipped when the server already holds the digest, and
sent from disk in 1 MiB chunks; the server verifies the digest before publishing.
Downloads are hashed as they arrive and refused (``IntegrityError`` naming the artifact
and both digests) on a mismatch. Nothing here holds a whole blob in memory except
``put_bytes`` / ``read_bytes``, which exist for small ones.
"""

from __future__ import annotations

import io
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, BinaryIO

import httpx

from keel.client.http import KeelHttp
from keel.errors import IntegrityError, InvalidInput, NotFound
from keel.store.artifacts import CHUNK_SIZE, Blob, _check_digest, _hasher, hash_file

__all__ = ["RestBlobStore"]


def _corrupted(label: str, expected: str, actual: str) -> IntegrityError:
    return IntegrityError(
        f"artifact {label!r} is corrupted: expected blake3 digest {expected}, found {actual}"
    )


def _file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


class _VerifyingReader(io.RawIOBase):
    """Reads a streamed response, hashing it; ``IntegrityError`` at EOF on a mismatch."""

    def __init__(self, chunks: Iterator[bytes], expected: str, label: str) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""
        self._expected = expected
        self._label = label
        self._hasher = _hasher()
        self._checked = False

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` with the next bytes; at EOF, check the digest."""
        view = memoryview(buffer).cast("B")
        if not view.nbytes:
            return 0
        if not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                if not self._checked:
                    actual = self._hasher.hexdigest()
                    if actual != self._expected:
                        raise _corrupted(self._label, self._expected, actual)
                    self._checked = True
                return 0
            self._hasher.update(self._pending)
        n = min(view.nbytes, len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class RestBlobStore:
    """The ``BlobStore`` protocol over a Keel server's ``/api/v1/blobs`` endpoints."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"RestBlobStore({self.http.base_url!r})"

    # -- writing -------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike[str]) -> Blob:
        """Return the ``Blob`` for a local file, uploading it unless the server has it."""
        source = os.fspath(path)
        digest, size = hash_file(source)
        return self._upload(source, digest, size)

    def _upload(self, source: str, digest: str, size: int) -> Blob:
        if not self.exists(digest):
            try:
                self.http.request(
                    "PUT",
                    f"/api/v1/blobs/{digest}",
                    content=_file_chunks(source),
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                )
            except IntegrityError as exc:
                raise IntegrityError(
                    f"{source} changed while it was being uploaded (blake3 {digest} before); "
                    f"nothing was stored, retry once it is stable ({exc.message})"
                ) from None
        return Blob(digest, size)

    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Blob:
        """Return the ``Blob`` for what ``stream`` yields (spooled to a temp file first).

        With ``expected_digest``, other content raises ``IntegrityError`` and nothing is
        stored.
        """
        expected = None if expected_digest is None else _check_digest(expected_digest)
        fd, tmp = tempfile.mkstemp(prefix="keel-upload-", suffix=".part")
        try:
            hasher, size = _hasher(), 0
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK_SIZE):
                    if isinstance(chunk, str):
                        raise InvalidInput("stream is a text stream; open it in binary mode")
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            digest = hasher.hexdigest()
            if expected is not None and digest != expected:
                raise IntegrityError(
                    f"the stream does not match its digest: expected blake3 {expected}, "
                    f"got {digest}; nothing was stored"
                )
            return self._upload(tmp, digest, size)
        finally:
            os.unlink(tmp)

    def put_bytes(self, data: bytes) -> Blob:
        """Return the ``Blob`` for ``data``, uploading it unless the server has it."""
        hasher = _hasher()
        hasher.update(data)
        digest = hasher.hexdigest()
        if not self.exists(digest):
            self.http.request(
                "PUT",
                f"/api/v1/blobs/{digest}",
                content=bytes(data),
                headers={"Content-Type": "application/octet-stream"},
            )
        return Blob(digest, len(data))

    # -- inspecting ----------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        """Return whether the server stores a blob with this digest (HEAD: 200 or 404)."""
        digest = _check_digest(digest)
        try:
            # HEAD answers carry no body, so the JSON error path of KeelHttp cannot apply.
            response = self.http._client.head(f"/api/v1/blobs/{digest}")
        except httpx.TransportError as exc:
            raise self.http._unreachable(exc) from exc
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            self.http._raise_for(response)
        return True

    # -- reading -------------------------------------------------------------------------
    @contextmanager
    def _download(self, digest: str, label: str) -> Iterator[httpx.Response]:
        try:
            with self.http.stream("GET", f"/api/v1/blobs/{digest}") as response:
                yield response
        except NotFound:
            raise IntegrityError(
                f"artifact {label!r} is missing from the artifact store {self.http.base_url} "
                f"(expected blake3 digest {digest})"
            ) from None

    @contextmanager
    def open_verified(self, digest: str, *, name: str | None = None) -> Iterator[BinaryIO]:
        """Yield a reader of the blob that raises ``IntegrityError`` at EOF on a mismatch."""
        digest = _check_digest(digest)
        label = name or digest
        with self._download(digest, label) as response:
            raw = _VerifyingReader(response.iter_bytes(CHUNK_SIZE), digest, label)
            with io.BufferedReader(raw, CHUNK_SIZE) as f:
                yield f  # type: ignore[misc]

    def read_bytes(self, digest: str, *, name: str | None = None) -> bytes:
        """Return a small blob's bytes, verified."""
        with self.open_verified(digest, name=name) as f:
            return f.read()

    def get_file(
        self, digest: str, dest: str | os.PathLike[str], *, name: str | None = None
    ) -> Path:
        """Return ``dest`` after streaming the verified blob there atomically.

        The bytes go to a temp file beside ``dest``, renamed onto it only once the digest
        matches; on any failure the temp file is removed and ``dest`` is left untouched.
        """
        digest = _check_digest(digest)
        target = Path(dest)
        if target.is_dir():
            raise InvalidInput(f"{target} is a folder; give the path of the file to write")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with self.open_verified(digest, name=name) as src, open(tmp, "xb") as out:
                _copy(src, out)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target


def _copy(src: IO[bytes], out: IO[bytes]) -> None:
    while chunk := src.read(CHUNK_SIZE):
        out.write(chunk)
