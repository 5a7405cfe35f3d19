"""Where artifact bytes live: a local folder or any fsspec filesystem, written atomically.

``ArtifactStore`` (in ``keel.store.artifacts``) decides *what* to store and verifies it;
a backend here only moves bytes. Both backends share one interface, ``BlobBackend``:

- ``LocalBackend`` uses plain ``os`` calls. A write goes to ``<root>/tmp/<random>``, is
  fsynced, then ``os.replace``-d into place. ``tmp/`` lives inside the root, so it is on the
  same filesystem as ``blobs/`` and the rename is atomic. A write with ``sync=False`` skips
  both fsyncs; the caller then makes it durable with ``make_durable``, in a group: many
  small fsyncs one after another each wait for a journal commit (~1–7 ms here), while a
  group is one ``syncfs`` or concurrent fsyncs that the journal coalesces.
- ``FsspecBackend`` wraps any fsspec filesystem. On S3 an object only becomes visible once its
  PUT (or its multipart upload) completes, so when the digest is known in advance it is
  uploaded straight to its final key: that is S3's atomic rename, minus a server-side copy
  of the whole object. Otherwise it writes a temp key, then ``cp_file`` + ``rm_file``.
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import IO, Any

import fsspec
import fsspec.core
import fsspec.utils
from fsspec.spec import AbstractBufferedFile

from keel.errors import InvalidInput, MissingDependency, require
from keel.store.durability import fsync_dir, sync_files

__all__ = [
    "BlobBackend",
    "FsspecBackend",
    "LocalBackend",
    "normalise_url",
    "open_backend",
]

S3_ENDPOINT_ENV = "KEEL_S3_ENDPOINT_URL"
_LOCAL_PROTOCOLS = ("file", "local")
_MIB = 1 << 20
# Remote reads fetch this much ahead of each 1 MiB read (fsspec's "readahead" cache), so a
# download makes one request per 4 MiB and never holds more than that in memory.
_READ_BLOCK = 4 * _MIB
# s3fs buffers one multipart part in memory before sending it. S3 allows at most 10,000
# parts per object, so a part must grow with the object: 8 MiB parts cap an upload at
# ~78 GiB. Streams of unknown length use 32 MiB parts (up to ~312 GiB).
_MIN_PART = 8 * _MIB
_STREAM_PART = 32 * _MIB
_MAX_PARTS = 9_000  # under S3's 10,000, with headroom


def _part_size(size_hint: int | None) -> int:
    if size_hint is None:
        return _STREAM_PART
    needed = -(-size_hint // _MAX_PARTS)  # ceiling division
    return max(_MIN_PART, -(-needed // _MIB) * _MIB)


class BlobBackend(ABC):
    """The few byte-moving operations an artifact store needs from its storage."""

    #: True when a write to the final path is already atomic (no temp + rename needed).
    direct_writes: bool = False
    #: Errors that mean "the storage is unreachable" (mapped to ``StoreUnavailable``).
    unavailable_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, root: str) -> None:
        self.root = root

    @abstractmethod
    def join(self, *parts: str) -> str:
        """Return the path of ``parts`` under the root."""

    @abstractmethod
    def open_read(self, path: str) -> IO[bytes]:
        """Return a binary reader; raise ``FileNotFoundError`` if ``path`` is absent."""

    @abstractmethod
    def open_write(
        self, path: str, *, temporary: bool, size_hint: int | None = None, sync: bool = True
    ) -> AbstractContextManager[IO[bytes]]:
        """Return a writer that publishes on a clean exit and leaves nothing on an error.

        With ``sync=False`` the bytes may not be on stable storage yet when it returns
        (see ``make_durable``).
        """

    @abstractmethod
    def publish(self, tmp: str, final: str, *, sync: bool = True) -> None:
        """Move a finished temp file to ``final`` atomically (replacing what is there)."""

    @abstractmethod
    def make_durable(self, paths: Sequence[str]) -> None:
        """Make files written with ``sync=False`` survive a crash (and their names)."""

    @abstractmethod
    def size(self, path: str) -> int | None:
        """Return the size of the file at ``path``, or ``None`` if there is none."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Delete ``path``; a missing file is not an error."""

    @abstractmethod
    def list_names(self, prefix: str) -> Iterator[str]:
        """Yield the base names of every file under ``prefix`` (recursively)."""

    def new_tmp_path(self) -> str:
        """Return a fresh, unique temp path under ``<root>/tmp/``."""
        return self.join("tmp", f"{uuid.uuid4().hex}.part")


class LocalBackend(BlobBackend):
    """A folder on this machine, through plain ``os`` calls."""

    def join(self, *parts: str) -> str:
        """Return the OS path of ``parts`` under the root."""
        return os.path.join(self.root, *parts)

    def open_read(self, path: str) -> IO[bytes]:
        """Return an unbuffered binary reader (callers read in 1 MiB chunks)."""
        return open(path, "rb", buffering=0)

    @contextmanager
    def open_write(
        self, path: str, *, temporary: bool, size_hint: int | None = None, sync: bool = True
    ) -> Iterator[IO[bytes]]:
        """Yield a new file at ``path``; fsync it on success (if ``sync``), delete on error."""
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            with open(path, "xb") as out:
                yield out
                out.flush()
                # fsync before the rename: without it a power cut soon after can leave an
                # empty or partial file under the final name (the rename reached the disk,
                # the data did not). It costs a disk flush per artifact, which is small next
                # to writing the artifact; the metadata DB records digests it relies on.
                # Without ``sync`` the caller owes a make_durable before any record does.
                if sync:
                    os.fsync(out.fileno())
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(path)
            raise

    def publish(self, tmp: str, final: str, *, sync: bool = True) -> None:
        """``os.replace`` ``tmp`` onto ``final`` and fsync the directory entry (if ``sync``)."""
        parent = os.path.dirname(final)
        os.makedirs(parent, exist_ok=True)
        os.replace(tmp, final)
        if sync:
            fsync_dir(parent)

    def make_durable(self, paths: Sequence[str]) -> None:
        """Flush the files at ``paths`` and their folders' entries to stable storage.

        See ``keel.store.durability.sync_files``: one ``syncfs`` for a large group,
        concurrent fsyncs for a small one. A missing file raises ``FileNotFoundError``.
        """
        sync_files(self.root, paths)

    def size(self, path: str) -> int | None:
        """Return the file's size, or ``None`` if it does not exist."""
        try:
            return os.stat(path).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    def remove(self, path: str) -> None:
        """Unlink ``path`` if present."""
        with suppress(FileNotFoundError):
            os.unlink(path)

    def list_names(self, prefix: str) -> Iterator[str]:
        """Yield file names under ``prefix``, walking the tree lazily."""
        for _dirpath, _dirnames, filenames in os.walk(prefix):
            yield from filenames


class FsspecBackend(BlobBackend):
    """Any fsspec filesystem (S3 through s3fs, memory://, …)."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str) -> None:
        super().__init__(root.rstrip("/"))
        self.fs = fs
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
        if "s3" in protocols:
            self.direct_writes = True
            # botocore's connection errors do not derive from the built-in ConnectionError.
            from botocore.exceptions import ConnectionError as BotoConnectionError

            errors.append(BotoConnectionError)
        self.unavailable_errors = tuple(errors)

    def join(self, *parts: str) -> str:
        """Return the fsspec path of ``parts`` under the root."""
        return "/".join((self.root, *parts))

    def open_read(self, path: str) -> IO[bytes]:
        """Return a reader that fetches ahead in 4 MiB blocks."""
        # Another process may have replaced or deleted the object: never trust a listing
        # cached by this fs instance for the file's size.
        self.fs.invalidate_cache(path)
        return self.fs.open(path, "rb", block_size=_READ_BLOCK)

    @contextmanager
    def open_write(
        self, path: str, *, temporary: bool, size_hint: int | None = None, sync: bool = True
    ) -> Iterator[IO[bytes]]:
        """Yield a writer; close (publish) it on success, abort the upload on an error.

        A completed upload is durable: ``sync`` changes nothing here.
        """
        if not self.direct_writes:  # object stores have no folders to create (and S3 would
            self.fs.makedirs(self.fs._parent(path), exist_ok=True)  # spend a request on it)
        out = self.fs.open(path, "wb", block_size=_part_size(size_hint))
        done = False
        try:
            yield out
            out.close()
            done = True
        finally:
            if not done:
                _abandon(out)
                if temporary:
                    # Best effort: the store may be what failed. A leftover temp is harmless.
                    with suppress(Exception):
                        self.fs.rm_file(path)

    def publish(self, tmp: str, final: str, *, sync: bool = True) -> None:
        """Copy ``tmp`` to ``final`` (server-side on S3), then delete ``tmp``."""
        if not self.direct_writes:
            self.fs.makedirs(self.fs._parent(final), exist_ok=True)
        self.fs.cp_file(tmp, final)
        self.fs.rm_file(tmp)

    def make_durable(self, paths: Sequence[str]) -> None:
        """Do nothing: an object store's write is durable once it completes."""

    def size(self, path: str) -> int | None:
        """Return the object's size, or ``None`` if there is no such file."""
        self.fs.invalidate_cache(path)
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return None
        return int(info["size"]) if info.get("type") == "file" else None

    def remove(self, path: str) -> None:
        """Delete ``path`` if present."""
        with suppress(FileNotFoundError):
            self.fs.rm_file(path)

    def list_names(self, prefix: str) -> Iterator[str]:
        """Yield file names under ``prefix`` (one listing; S3 pages through it)."""
        self.fs.invalidate_cache(prefix)
        try:
            paths = self.fs.find(prefix)
        except FileNotFoundError:
            return
        for path in paths:
            yield path.rsplit("/", 1)[-1]


def _abandon(out: Any) -> None:
    # A buffered fsspec file *publishes* on close(), even when closed by an exception inside
    # a ``with`` block, so a failed upload must never reach close(): discard() aborts the
    # multipart upload (s3fs) and marking it closed stops close()/__del__ from flushing.
    if isinstance(out, AbstractBufferedFile):
        with suppress(Exception):
            out.discard()
        out.closed = True
    else:
        with suppress(Exception):
            out.close()


def _split(url: str) -> tuple[str, str]:
    protocol = fsspec.utils.get_protocol(url)
    rest = url.split("://", 1)[1] if "://" in url else url
    return protocol, rest


def normalise_url(url: str | os.PathLike[str]) -> str:
    """Return the canonical form of an artifact store URL (local paths become absolute)."""
    text = os.fspath(url)
    if not text.strip():
        raise InvalidInput("the artifact store URL is empty; give a folder or an fsspec URL")
    protocol, rest = _split(text)
    if protocol in _LOCAL_PROTOCOLS:
        return os.path.abspath(os.path.expanduser(rest))
    rest = rest.rstrip("/")
    if not rest:
        raise InvalidInput(
            f"artifact store URL {text!r} names no location; use e.g. {protocol}://bucket/prefix"
        )
    return text.split("://", 1)[0] + "://" + rest


def open_backend(url: str, storage_options: dict[str, Any] | None) -> BlobBackend:
    """Return the backend for a normalised URL (imports its fsspec driver; no I/O)."""
    protocol, _ = _split(url)
    if protocol in _LOCAL_PROTOCOLS:
        return LocalBackend(url)
    options = dict(storage_options or {})
    if protocol in ("s3", "s3a"):
        require("s3fs", "s3")
        endpoint = os.environ.get(S3_ENDPOINT_ENV)
        client_kwargs = dict(options.get("client_kwargs") or {})
        # Explicit storage_options win over the environment.
        if endpoint and "endpoint_url" not in options and "endpoint_url" not in client_kwargs:
            options["client_kwargs"] = {**client_kwargs, "endpoint_url": endpoint}
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise MissingDependency(f"cannot open artifact store {url}: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"cannot open artifact store {url!r}: {exc}; use a local folder, "
            "s3://bucket/prefix, or another fsspec URL with valid storage options"
        ) from exc
    return FsspecBackend(fs, root)
