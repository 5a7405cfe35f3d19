"""The artifact store, on every backend: a local folder, memory://, and S3 (moto)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import fsspec
import pytest

from keel.errors import IntegrityError, InvalidInput, NotFound, StoreUnavailable
from keel.store.artifacts import (
    CHUNK_SIZE,
    ArtifactStore,
    Blob,
    forget_artifact_stores,
    open_artifact_store,
)


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def drain(f: Any) -> None:
    while f.read(CHUNK_SIZE):
        pass


def rel_blob_path(digest: str) -> str:
    return f"blobs/{digest[:2]}/{digest[2:4]}/{digest}"


@dataclass
class ArtifactBackend:
    """A store plus direct access to its storage, to tamper with it behind its back."""

    kind: str
    store: ArtifactStore
    overwrite: Callable[[str, bytes], None]  # replace a blob's bytes
    remove: Callable[[str], None]  # delete a blob
    temp_files: Callable[[], list[str]]  # what is left under <root>/tmp/
    pending_uploads: Callable[[], list[str]] = list  # unfinished S3 multipart uploads


def _local(tmp_path: Path) -> ArtifactBackend:
    root = tmp_path / "artifacts"
    store = ArtifactStore(str(root))

    def overwrite(digest: str, data: bytes) -> None:
        (root / rel_blob_path(digest)).write_bytes(data)

    def remove(digest: str) -> None:
        (root / rel_blob_path(digest)).unlink()

    def temp_files() -> list[str]:
        tmp = root / "tmp"
        return [p.name for p in tmp.iterdir()] if tmp.exists() else []

    return ArtifactBackend("local", store, overwrite, remove, temp_files)


def _memory() -> ArtifactBackend:
    root = f"/keel-test-{uuid.uuid4().hex}"
    fs = fsspec.filesystem("memory")
    store = ArtifactStore(f"memory://{root}")
    return ArtifactBackend(
        "memory",
        store,
        lambda d, data: fs.pipe_file(f"{root}/{rel_blob_path(d)}", data),
        lambda d: fs.rm_file(f"{root}/{rel_blob_path(d)}"),
        lambda: fs.find(f"{root}/tmp"),
    )


def _s3(bucket: str, options: dict[str, Any], client: Any) -> ArtifactBackend:
    prefix = f"t-{uuid.uuid4().hex}"
    store = ArtifactStore(f"s3://{bucket}/{prefix}", storage_options=options)

    def temp_files() -> list[str]:
        listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/tmp/")
        return [o["Key"] for o in listing.get("Contents", [])]

    def pending_uploads() -> list[str]:
        listing = client.list_multipart_uploads(Bucket=bucket, Prefix=f"{prefix}/")
        return [u["Key"] for u in listing.get("Uploads", [])]

    return ArtifactBackend(
        "s3",
        store,
        lambda d, data: client.put_object(
            Bucket=bucket, Key=f"{prefix}/{rel_blob_path(d)}", Body=data
        ),
        lambda d: client.delete_object(Bucket=bucket, Key=f"{prefix}/{rel_blob_path(d)}"),
        temp_files,
        pending_uploads,
    )


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def artifact_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactBackend]:
    if request.param == "local":
        yield _local(tmp_path)
    elif request.param == "memory":
        b = _memory()
        yield b
        fs, root = fsspec.filesystem("memory"), b.store.url.removeprefix("memory://")
        if fs.exists(root):
            fs.rm(root, recursive=True)
    else:
        yield _s3(
            request.getfixturevalue("s3_bucket"),
            request.getfixturevalue("s3_storage_options"),
            request.getfixturevalue("s3_client"),
        )


@pytest.fixture
def store(artifact_backend: ArtifactBackend) -> ArtifactStore:
    return artifact_backend.store


def write_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


# -- round trips -------------------------------------------------------------------------


def test_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model.pkl"
    data = write_file(src, 3 * CHUNK_SIZE + 17)

    blob = store.put_file(src)

    assert blob == Blob(b3(data), len(data))
    assert store.exists(blob.digest)
    assert store.size(blob.digest) == len(data)
    assert store.read_bytes(blob.digest) == data
    out = store.get_file(blob.digest, tmp_path / "out" / "model.pkl", name="model/model.pkl")
    assert out == tmp_path / "out" / "model.pkl"
    assert out.read_bytes() == data
    with store.open_verified(blob.digest) as f:
        assert f.read() == data
    assert list(store.iter_digests()) == [blob.digest]


def test_put_bytes_and_put_stream_agree_with_blake3(store: ArtifactStore) -> None:
    data = b"hello keel" * 1000
    assert store.put_bytes(data) == Blob(b3(data), len(data))
    assert store.put_stream(io.BytesIO(data)) == Blob(b3(data), len(data))
    assert store.put_bytes(b"other") == Blob(b3(b"other"), 5)
    assert sorted(store.iter_digests()) == sorted([b3(data), b3(b"other")])


def test_empty_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    blob = store.put_file(tmp_path / "empty")
    assert blob == Blob(b3(b""), 0)
    assert store.put_stream(io.BytesIO(b"")) == blob
    assert store.size(blob.digest) == 0
    assert store.read_bytes(blob.digest) == b""
    assert store.get_file(blob.digest, tmp_path / "out").read_bytes() == b""


def test_put_stream_from_a_non_seekable_stream(store: ArtifactStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 5)

    class Pipe(io.RawIOBase):
        """Returns at most 1000 bytes per read, like a socket, and cannot seek."""

        def __init__(self) -> None:
            self.pos = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            n = min(len(b), 1000, len(data) - self.pos)
            b[:n] = data[self.pos : self.pos + n]
            self.pos += n
            return n

    pipe = Pipe()
    assert not pipe.seekable()
    blob = store.put_stream(pipe)  # type: ignore[arg-type]
    assert blob == Blob(b3(data), len(data))
    assert store.read_bytes(blob.digest) == data


def test_delete(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"short-lived")
    store.delete(blob.digest)
    assert not store.exists(blob.digest)
    store.delete(blob.digest)  # deleting twice is fine
    assert list(store.iter_digests()) == []


# -- dedup and concurrency -----------------------------------------------------------------


def test_same_content_is_stored_once(
    artifact_backend: ArtifactBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = artifact_backend.store
    src = tmp_path / "a.bin"
    data = write_file(src, CHUNK_SIZE + 1)
    first = store.put_file(src)

    def no_upload(*args: object, **kwargs: object) -> None:
        raise AssertionError("a stored blob was uploaded again")

    monkeypatch.setattr(store._backend, "open_write", no_upload)
    copy = tmp_path / "copy-of-a.bin"
    copy.write_bytes(data)
    assert store.put_file(copy) == first
    assert store.put_bytes(data) == first
    monkeypatch.undo()

    assert store.put_stream(io.BytesIO(data)) == first  # hashed while written: temp dropped
    assert list(store.iter_digests()) == [first.digest]
    assert artifact_backend.temp_files() == []


def test_a_damaged_blob_is_replaced_by_the_next_put(artifact_backend: ArtifactBackend) -> None:
    data = b"0123456789" * 100
    blob = artifact_backend.store.put_bytes(data)
    artifact_backend.overwrite(blob.digest, data[:10])  # truncated: the size no longer matches
    assert artifact_backend.store.put_bytes(data) == blob
    assert artifact_backend.store.read_bytes(blob.digest) == data


def test_concurrent_puts_of_the_same_content(
    artifact_backend: ArtifactBackend, tmp_path: Path
) -> None:
    store = artifact_backend.store
    data = write_file(tmp_path / "same.bin", 2 * CHUNK_SIZE + 3)
    workers = 8
    barrier = threading.Barrier(workers)

    def put(i: int) -> Blob:
        barrier.wait()
        if i % 3 == 0:
            return store.put_bytes(data)
        if i % 3 == 1:
            return store.put_stream(io.BytesIO(data))
        return store.put_file(tmp_path / "same.bin")

    with ThreadPoolExecutor(workers) as pool:
        blobs = set(pool.map(put, range(workers)))

    assert blobs == {Blob(b3(data), len(data))}
    assert list(store.iter_digests()) == [b3(data)]
    assert store.read_bytes(b3(data)) == data
    assert artifact_backend.temp_files() == []


def test_concurrent_puts_from_two_processes(tmp_path: Path) -> None:
    data = write_file(tmp_path / "big.bin", 8 * CHUNK_SIZE)
    root = tmp_path / "artifacts"
    script = (
        "import sys\n"
        "from keel.store.artifacts import ArtifactStore\n"
        "print(ArtifactStore(sys.argv[1]).put_file(sys.argv[2]).digest)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(root), str(tmp_path / "big.bin")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert {out.strip() for out, _ in results} == {b3(data)}
    store = ArtifactStore(str(root))
    assert list(store.iter_digests()) == [b3(data)]
    assert store.read_bytes(b3(data)) == data
    assert list((root / "tmp").iterdir()) == []


# -- verification ---------------------------------------------------------------------------


def test_corrupted_artifact_raises_naming_it_and_both_digests(
    artifact_backend: ArtifactBackend, tmp_path: Path
) -> None:
    data = b"the real model" * 100
    blob = artifact_backend.store.put_bytes(data)
    tampered = b"X" + data[1:]
    artifact_backend.overwrite(blob.digest, tampered)

    with pytest.raises(IntegrityError) as info:
        artifact_backend.store.read_bytes(blob.digest, name="model/model.pkl")
    message = str(info.value)
    assert "'model/model.pkl' is corrupted" in message
    assert f"expected blake3 digest {blob.digest}" in message
    assert f"found {b3(tampered)}" in message

    with pytest.raises(IntegrityError, match=blob.digest):
        artifact_backend.store.get_file(blob.digest, tmp_path / "out.pkl")
    assert not (tmp_path / "out.pkl").exists()


def test_missing_artifact_raises_naming_it_and_the_digest(
    artifact_backend: ArtifactBackend, tmp_path: Path
) -> None:
    store = artifact_backend.store
    blob = store.put_bytes(b"soon gone")
    artifact_backend.remove(blob.digest)

    assert not store.exists(blob.digest)
    expected = (
        f"artifact 'model/model.pkl' is missing from the artifact store {store.url} "
        f"(expected blake3 digest {blob.digest})"
    )
    with pytest.raises(IntegrityError) as info:
        store.read_bytes(blob.digest, name="model/model.pkl")
    assert str(info.value) == expected
    with pytest.raises(IntegrityError, match="is missing"):
        store.get_file(blob.digest, tmp_path / "x", name="model/model.pkl")
    with pytest.raises(IntegrityError, match="is missing"), store.open_verified(blob.digest):
        pass
    with pytest.raises(IntegrityError, match=blob.digest):
        store.size(blob.digest)
    never_stored = b3(b"never stored")
    with pytest.raises(IntegrityError, match=never_stored):
        store.read_bytes(never_stored)


def test_open_verified_detects_corruption_at_eof(artifact_backend: ArtifactBackend) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    blob = artifact_backend.store.put_bytes(data)
    artifact_backend.overwrite(blob.digest, data[:-1] + bytes([data[-1] ^ 1]))

    with artifact_backend.store.open_verified(blob.digest, name="weights") as f:
        assert f.read(CHUNK_SIZE) == data[:CHUNK_SIZE]  # no error before the end
        with pytest.raises(IntegrityError, match="'weights' is corrupted"):
            drain(f)


def test_get_file_leaves_no_partial_file_on_failure(
    artifact_backend: ArtifactBackend, tmp_path: Path
) -> None:
    data = os.urandom(2 * CHUNK_SIZE)
    blob = artifact_backend.store.put_bytes(data)
    artifact_backend.overwrite(blob.digest, data[:-1] + b"\0")
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    (dest_dir / "existing.bin").write_bytes(b"previous version")

    with pytest.raises(IntegrityError):
        artifact_backend.store.get_file(blob.digest, dest_dir / "new.bin")
    with pytest.raises(IntegrityError):
        artifact_backend.store.get_file(blob.digest, dest_dir / "existing.bin")

    assert sorted(p.name for p in dest_dir.iterdir()) == ["existing.bin"]
    assert (dest_dir / "existing.bin").read_bytes() == b"previous version"


@pytest.mark.parametrize(
    "digest",
    ["../../etc/passwd", "", "ZZ", "a" * 65, "a" * 63, "A" * 64, "../" + "a" * 61, None],
)
def test_hostile_digests_are_refused(store: ArtifactStore, tmp_path: Path, digest: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.exists(digest),
        lambda: store.size(digest),
        lambda: store.read_bytes(digest),
        lambda: store.get_file(digest, tmp_path / "out"),
        lambda: store.open_verified(digest).__enter__(),
        lambda: store.delete(digest),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="not a BLAKE3 digest"):
            call()


def test_a_source_that_changes_while_stored_is_not_stored(
    artifact_backend: ArtifactBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.store.artifacts as artifacts

    src = tmp_path / "moving.bin"
    data = write_file(src, 9 * CHUNK_SIZE)  # over one S3 part: exercises aborting an upload
    stale = b3(b"what the file held when it was hashed")
    monkeypatch.setattr(artifacts, "_hash_stream", lambda f: (stale, len(data)))

    with pytest.raises(IntegrityError, match="changed while it was being stored"):
        artifact_backend.store.put_file(src)
    assert not artifact_backend.store.exists(stale)
    assert not artifact_backend.store.exists(b3(data))
    assert artifact_backend.temp_files() == []
    assert artifact_backend.pending_uploads() == []


# -- streaming -----------------------------------------------------------------------------


def test_bytes_move_in_chunks(
    artifact_backend: ArtifactBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = artifact_backend.store
    requests: list[int] = []

    class Spy:
        def __init__(self, f: Any) -> None:
            self.f = f

        def read(self, n: int = -1) -> bytes:
            requests.append(n)
            return self.f.read(n)

        def readinto(self, b: Any) -> int:
            requests.append(len(memoryview(b).cast("B")))
            return self.f.readinto(b)

        def write(self, data: bytes) -> int:
            requests.append(len(data))
            return self.f.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

    original_read, original_write = store._backend.open_read, store._backend.open_write
    monkeypatch.setattr(store._backend, "open_read", lambda p: Spy(original_read(p)))

    def open_write(*args: Any, **kwargs: Any) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def spied() -> Iterator[Spy]:
            with original_write(*args, **kwargs) as out:
                yield Spy(out)

        return spied()

    monkeypatch.setattr(store._backend, "open_write", open_write)

    src = tmp_path / "big.bin"
    data = write_file(src, 5 * CHUNK_SIZE + 1)
    blob = store.put_file(src)
    source = Spy(io.BytesIO(data[::-1]))
    store.put_stream(source)  # type: ignore[arg-type]
    store.get_file(blob.digest, tmp_path / "back.bin")
    with store.open_verified(blob.digest) as f:
        drain(f)

    assert len(requests) > 20
    assert all(0 <= n <= CHUNK_SIZE for n in requests), sorted(set(requests))


def test_streaming_memory_stays_far_below_the_file_size(tmp_path: Path) -> None:
    # Local only: moto runs in this process and holds whole objects, so a tracemalloc
    # peak would measure moto. test_bytes_move_in_chunks covers the remote backends.
    store = ArtifactStore(str(tmp_path / "artifacts"))
    src = tmp_path / "big.bin"
    size = 20 * CHUNK_SIZE
    write_file(src, size)
    limit = 4 * CHUNK_SIZE

    def peak(action: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            action()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert peak(lambda: store.put_file(src)) < limit
    digest = store.put_file(src).digest
    store.delete(digest)
    with open(src, "rb") as f:
        assert peak(lambda: store.put_stream(f)) < limit
    assert peak(lambda: store.get_file(digest, tmp_path / "back.bin")) < limit

    def read_through() -> None:
        with store.open_verified(digest) as f:
            drain(f)

    assert peak(read_through) < limit
    assert (tmp_path / "back.bin").stat().st_size == size


# -- construction and errors ----------------------------------------------------------------


def test_init_does_no_io(tmp_path: Path) -> None:
    root = tmp_path / "lazy" / "artifacts"
    store = ArtifactStore(str(root))
    assert not store.exists(b3(b"x"))
    assert list(store.iter_digests()) == []
    assert not (tmp_path / "lazy").exists()
    store.put_bytes(b"x")
    assert (root / rel_blob_path(b3(b"x"))).is_file()


def test_urls_are_normalised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert ArtifactStore("rel/dir").url == str(tmp_path / "rel" / "dir")
    assert ArtifactStore(f"file://{tmp_path}/a/").url == str(tmp_path / "a")
    assert ArtifactStore("memory://bucket/prefix/").url == "memory://bucket/prefix"


@pytest.mark.parametrize("url", ["", "  ", "nosuchprotocol://x/y", "memory://"])
def test_bad_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(InvalidInput):
        ArtifactStore(url)


def test_put_file_of_a_missing_file_or_a_folder(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(NotFound, match="no such file"):
        store.put_file(tmp_path / "absent")
    with pytest.raises(InvalidInput, match="is a folder"):
        store.put_file(tmp_path)


def test_put_stream_refuses_a_text_stream(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    with pytest.raises(InvalidInput, match="binary mode"):
        store.put_stream(io.StringIO("text"))  # type: ignore[arg-type]
    assert ArtifactStore(str(tmp_path / "artifacts")).put_bytes(b"") == Blob(b3(b""), 0)


def test_open_artifact_store_is_one_store_per_url(tmp_path: Path) -> None:
    forget_artifact_stores()
    try:
        url = str(tmp_path / "artifacts")
        with ThreadPoolExecutor(8) as pool:
            stores = list(pool.map(lambda _: open_artifact_store(url), range(32)))
        assert all(s is stores[0] for s in stores)
        assert open_artifact_store(f"file://{url}/") is stores[0]
        assert open_artifact_store(str(tmp_path / "other")) is not stores[0]
    finally:
        forget_artifact_stores()


@pytest.mark.s3
def test_s3_endpoint_from_the_environment(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = ArtifactStore(f"s3://{s3_bucket}/env-{uuid.uuid4().hex}")
    blob = store.put_bytes(b"via KEEL_S3_ENDPOINT_URL")
    assert store.read_bytes(blob.digest) == b"via KEEL_S3_ENDPOINT_URL"


@pytest.mark.s3
def test_unreachable_s3_is_store_unavailable() -> None:
    pytest.importorskip("s3fs", reason="s3fs is not installed (the 's3' extra)")
    store = ArtifactStore(
        "s3://keel-test/x",
        storage_options={
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": "http://127.0.0.1:9"},  # discard port: refused
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.exists(b3(b"x"))
