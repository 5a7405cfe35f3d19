"""The artifact store: content-addressed blobs, written atomically, verified on every read.

A blob is addressed by the BLAKE3 digest of its bytes and lives at
``<root>/blobs/<d[:2]>/<d[2:4]>/<d>``; storing the same bytes twice stores them once. The
root is any fsspec URL: a local folder by default, ``s3://bucket/prefix`` through s3fs.
Every byte moves in 1 MiB chunks, hashed on the way, so nothing holds a whole file in
memory. Every read is checked against the digest it was asked for; a missing or corrupted
blob raises ``IntegrityError`` naming the artifact and the expected digest.

How bytes are written atomically on each backend is described in ``keel.store.blobs``.
Two writers storing the same content at once both succeed: each writes its own temp file
and the last rename (or S3 PUT) of identical bytes wins.

A put is durable when it returns (fsynced, on a local folder) unless ``durable=False``:
then the caller must call ``make_durable`` on the digests before anything that must
survive a crash refers to them (pipeline step outputs: the engine makes each group of
finished steps' outputs durable, in one flush, before it records them). Such a blob may
be torn by a crash before that, so a later ``durable=False`` put of the same digest trusts
the stored copy only if its bytes still hash to its name.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, BinaryIO

from keel.errors import IntegrityError, InvalidInput, NotFound, StoreUnavailable
from keel.store.blob_interface import (
    _DIGEST,
    CHUNK_SIZE,
    Blob,
    BlobStore,
    _check_digest,
    _corrupted,
    _hasher,
)
from keel.store.blobs import BlobBackend, normalise_url, open_backend

__all__ = [
    "CHUNK_SIZE",
    "ArtifactStore",
    "Blob",
    "BlobStore",
    "forget_artifact_stores",
    "hash_file",
    "open_artifact_store",
]


class _VerifiedReader(io.RawIOBase):
    """Hashes what passes through and raises ``IntegrityError`` at EOF on a mismatch."""

    def __init__(self, raw: IO[bytes], expected: str, label: str, store: ArtifactStore) -> None:
        super().__init__()
        self._raw = raw
        self._expected = expected
        self._label = label
        self._store = store
        self._hasher = _hasher()

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the blob; at EOF, check the digest."""
        view = memoryview(buffer).cast("B")
        if not view.nbytes:
            return 0
        with self._store._guard():
            n = self._raw.readinto(view)  # type: ignore[attr-defined]
        if not n:
            actual = self._hasher.hexdigest()
            if actual != self._expected:
                raise _corrupted(self._label, self._expected, actual)
            return 0
        self._hasher.update(view[:n])
        return n

    def readall(self) -> bytes:
        """Return the rest of the blob (verified), reading it in 1 MiB chunks."""
        parts = []
        buffer = bytearray(CHUNK_SIZE)
        while n := self.readinto(buffer):
            parts.append(bytes(buffer[:n]))
        return b"".join(parts)

    def close(self) -> None:
        """Close the underlying reader."""
        try:
            self._raw.close()
        finally:
            super().close()


class ArtifactStore:
    """Content-addressed, verified blob storage at one fsspec URL."""

    def __init__(self, url: str, *, storage_options: dict[str, Any] | None = None) -> None:
        self._url = normalise_url(url)
        self._backend: BlobBackend = open_backend(self._url, storage_options)

    @property
    def url(self) -> str:
        """Return the root URL, normalised (a local folder is an absolute path)."""
        return self._url

    def __repr__(self) -> str:
        return f"ArtifactStore({self._url!r})"

    # -- writing -------------------------------------------------------------------------

    def put_file(self, path: str | os.PathLike[str], *, durable: bool = True) -> Blob:
        """Return the ``Blob`` for a local file, uploading it unless already stored.

        ``durable=False``: see the module's docstring (``make_durable`` is owed).
        """
        source = os.fspath(path)
        digest, size = hash_file(source)
        with self._guard():
            if self._stored(digest, size, durable):
                return Blob(digest, size)
            with open(source, "rb", buffering=0) as f:
                return self._write(f, expected=digest, size_hint=size, label=source, sync=durable)

    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Blob:
        """Return the ``Blob`` for everything left in ``stream`` (need not be seekable).

        With ``expected_digest`` the content is verified before it is published: a
        mismatch raises ``IntegrityError`` and nothing is stored.
        """
        expected = None if expected_digest is None else _check_digest(expected_digest)
        with self._guard():
            return self._write(stream, expected=expected, size_hint=None, label="stream")

    def put_bytes(self, data: bytes, *, durable: bool = True) -> Blob:
        """Return the ``Blob`` for ``data``, storing it unless already stored.

        ``durable=False``: see the module's docstring (``make_durable`` is owed).
        """
        hasher = _hasher()
        hasher.update(data)
        digest, size = hasher.hexdigest(), len(data)
        with self._guard():
            if self._stored(digest, size, durable):
                return Blob(digest, size)
            return self._write(
                io.BytesIO(data), expected=digest, size_hint=size, label="bytes", sync=durable
            )

    def make_durable(self, digests: Iterable[str]) -> None:
        """Make blobs put with ``durable=False`` survive a crash, all in one group flush.

        A digest that is not stored raises ``IntegrityError``; a flush the storage refuses
        raises ``StoreUnavailable``. On an object store a finished put is already durable.
        """
        paths = [self._blob_path(_check_digest(d)) for d in digests]
        try:
            with self._guard():
                self._backend.make_durable(paths)
        except FileNotFoundError as exc:
            raise IntegrityError(
                f"a blob to make durable is missing from the artifact store {self._url} "
                f"({exc.filename}); it was deleted before it was flushed"
            ) from None
        except OSError as exc:
            if isinstance(exc, StoreUnavailable):
                raise
            raise StoreUnavailable(
                f"the artifact store {self._url} could not flush blobs to stable storage "
                f"({exc}); check the disk (space, errors), then retry"
            ) from exc

    def _stored(self, digest: str, size: int, durable: bool) -> bool:
        if self._backend.size(self._blob_path(digest)) != size:
            return False
        if durable:
            return True
        # Possibly put without sync before a crash: trusted only if it still hashes right.
        try:
            if size <= CHUNK_SIZE:
                self.read_bytes(digest)
            else:
                with self.open_verified(digest) as f:
                    while f.read(CHUNK_SIZE):
                        pass
        except (IntegrityError, OSError):
            return False
        return True

    def _write(
        self,
        source: IO[bytes],
        *,
        expected: str | None,
        size_hint: int | None,
        label: str,
        sync: bool = True,
    ) -> Blob:
        backend = self._backend
        direct = expected is not None and backend.direct_writes
        target = self._blob_path(expected) if direct and expected else backend.new_tmp_path()
        opened = backend.open_write(target, temporary=not direct, size_hint=size_hint, sync=sync)
        with opened as out:
            hasher, size = _hasher(), 0
            while chunk := source.read(CHUNK_SIZE):
                if isinstance(chunk, str):
                    raise InvalidInput(f"{label} is a text stream; open it in binary mode")
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
            digest = hasher.hexdigest()
            if expected is not None and digest != expected:
                # Raised inside the writer: the upload is aborted, nothing is published.
                if label == "stream":
                    raise IntegrityError(
                        f"the uploaded content does not match its digest: expected blake3 "
                        f"{expected}, got {digest}; nothing was stored"
                    )
                raise IntegrityError(
                    f"{label} changed while it was being stored (blake3 {expected} before, "
                    f"{digest} while uploading); nothing was stored, retry once it is stable"
                )
        if direct:
            return Blob(digest, size)
        final = self._blob_path(digest)
        try:
            if sync and backend.size(final) == size:
                backend.remove(target)  # already stored (dedup): drop our copy
            else:  # unsynced: replace what may be a copy torn by a crash
                backend.publish(target, final, sync=sync)
        except BaseException:
            with suppress(Exception):  # best effort; the original error matters more
                backend.remove(target)
            raise
        return Blob(digest, size)

    # -- reading -------------------------------------------------------------------------

    @contextmanager
    def open_verified(self, digest: str, *, name: str | None = None) -> Iterator[BinaryIO]:
        """Yield a reader of the blob that raises ``IntegrityError`` at EOF on a mismatch.

        The check happens when the last byte has been read: a caller that streams the
        content onwards (an HTTP response) must read to EOF before trusting it.
        """
        digest = _check_digest(digest)
        label = name or digest
        with self._guard():
            try:
                raw = self._backend.open_read(self._blob_path(digest))
            except FileNotFoundError:
                raise self._missing(label, digest) from None
        with io.BufferedReader(_VerifiedReader(raw, digest, label, self), CHUNK_SIZE) as f:
            yield f

    def read_bytes(self, digest: str, *, name: str | None = None) -> bytes:
        """Return the blob's bytes, verified (for small blobs: this holds them all)."""
        digest = _check_digest(digest)
        label = name or digest
        with self._guard():
            try:
                raw = self._backend.open_read(self._blob_path(digest))
            except FileNotFoundError:
                raise self._missing(label, digest) from None
            with raw:
                data = raw.read()
        actual = _hasher()
        actual.update(data)
        if actual.hexdigest() != digest:
            raise _corrupted(label, digest, actual.hexdigest())
        return data

    def get_file(
        self, digest: str, dest: str | os.PathLike[str], *, name: str | None = None
    ) -> Path:
        """Return ``dest`` after writing the verified blob there atomically.

        The bytes stream to a temp file beside ``dest`` and are renamed onto it only once
        the digest matches; on any failure the temp file is removed and an existing
        ``dest`` is left untouched.
        """
        digest = _check_digest(digest)
        target = Path(dest)
        if target.is_dir():
            raise InvalidInput(f"{target} is a folder; give the path of the file to write")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with self.open_verified(digest, name=name) as src, open(tmp, "xb") as out:
                while chunk := src.read(CHUNK_SIZE):
                    out.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    # -- inspecting ----------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        """Return whether a blob with this digest is stored (its content is not checked)."""
        path = self._blob_path(_check_digest(digest))
        with self._guard():
            return self._backend.size(path) is not None

    def size(self, digest: str) -> int:
        """Return the stored blob's size in bytes; ``IntegrityError`` if it is missing."""
        path = self._blob_path(_check_digest(digest))
        with self._guard():
            size = self._backend.size(path)
        if size is None:
            raise self._missing(digest, digest)
        return size

    def delete(self, digest: str) -> None:
        """Delete the blob (nothing happens if it is not stored)."""
        path = self._blob_path(_check_digest(digest))
        with self._guard():
            self._backend.remove(path)

    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob, in no particular order."""
        with self._guard():
            for name in self._backend.list_names(self._backend.join("blobs")):
                if _DIGEST.fullmatch(name):
                    yield name

    # -- helpers -------------------------------------------------------------------------

    def _blob_path(self, digest: str) -> str:
        return self._backend.join("blobs", digest[:2], digest[2:4], digest)

    def _missing(self, label: str, digest: str) -> IntegrityError:
        return IntegrityError(
            f"artifact {label!r} is missing from the artifact store {self._url} "
            f"(expected blake3 digest {digest})"
        )

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._backend.unavailable_errors as exc:
            raise StoreUnavailable(
                f"the artifact store {self._url} is unreachable ({exc}); check the URL, "
                "the network and the credentials, then retry"
            ) from exc


def hash_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Return the BLAKE3 digest and size of a local file, read in chunks."""
    source = os.fspath(path)
    if os.path.isdir(source):
        raise InvalidInput(f"{source} is a folder; put_file stores a single file")
    try:
        with open(source, "rb", buffering=0) as f:
            return _hash_stream(f)
    except FileNotFoundError:
        raise NotFound(f"no such file: {source}") from None


def _hash_stream(f: IO[bytes]) -> tuple[str, int]:
    hasher, size = _hasher(), 0
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    while n := f.readinto(view):  # type: ignore[attr-defined]
        hasher.update(view[:n])
        size += n
    return hasher.hexdigest(), size


_stores: dict[str, ArtifactStore] = {}
_stores_lock = threading.Lock()


def open_artifact_store(url: str) -> ArtifactStore:
    """Return the process-wide ``ArtifactStore`` for ``url`` (one per normalised URL)."""
    key = normalise_url(url)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = ArtifactStore(key)
        return store


def forget_artifact_stores() -> None:
    """Drop the cached stores (tests use this between cases)."""
    with _stores_lock:
        _stores.clear()
