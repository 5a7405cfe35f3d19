"""Puts without fsync (``durable=False``) and ``make_durable``, which flushes them in groups."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.store.test_artifacts import rel_blob_path

from keel.errors import IntegrityError, StoreUnavailable
from keel.store import durability
from keel.store.artifacts import ArtifactStore


class Fsyncs:
    """Counts ``os.fsync`` calls and ``syncfs`` groups, doing them for real."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        self.syncfs: list[str] = []
        real_fsync, real_syncfs = os.fsync, durability._syncfs

        def fsync(fd: int) -> None:
            self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        def syncfs(root: str) -> bool:
            self.syncfs.append(root)
            return real_syncfs(root)

        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(durability, "_syncfs", syncfs)


@pytest.fixture
def local(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fds")
def test_an_unsynced_put_fsyncs_nothing_until_made_durable(
    local: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = Fsyncs(monkeypatch)
    durable = local.put_bytes(b"durable")
    blob_file = os.path.join(local.url, rel_blob_path(durable.digest))
    assert os.path.dirname(blob_file) in fsyncs.paths  # the rename, made durable
    assert len(fsyncs.paths) == 2  # the temp file's data, then the folder's entry

    fsyncs.paths.clear()
    blobs = [local.put_bytes(f"output {i}".encode(), durable=False) for i in range(3)]
    assert fsyncs.paths == []
    assert [local.read_bytes(b.digest) for b in blobs] == [b"output 0", b"output 1", b"output 2"]

    local.make_durable([b.digest for b in blobs])
    files = {os.path.join(local.url, rel_blob_path(b.digest)) for b in blobs}
    assert files | {os.path.dirname(f) for f in files} == set(fsyncs.paths)
    assert fsyncs.syncfs == []  # a small group: each file and folder fsynced


def test_a_large_group_is_one_syncfs(local: ArtifactStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fsyncs = Fsyncs(monkeypatch)
    blobs = [local.put_bytes(b"%d" % i, durable=False) for i in range(durability.SYNCFS_FROM)]
    local.make_durable([b.digest for b in blobs])
    if durability._libc and getattr(durability._libc, "syncfs", None) is not None:
        assert fsyncs.syncfs == [local.url]
        assert fsyncs.paths == []
    else:  # no syncfs here (not Linux): every file fsynced instead
        assert len(fsyncs.paths) >= len(blobs)


@pytest.mark.parametrize("count", [1, 3, durability.SYNCFS_FROM])
def test_making_a_missing_blob_durable_is_an_integrity_error(
    local: ArtifactStore, count: int
) -> None:
    blobs = [local.put_bytes(b"kept %d" % i, durable=False) for i in range(count)]
    gone = local.put_bytes(b"deleted before its flush", durable=False)
    local.delete(gone.digest)
    with pytest.raises(IntegrityError, match="missing from the artifact store"):
        local.make_durable([*(b.digest for b in blobs), gone.digest])


def test_a_failed_flush_is_store_unavailable(
    local: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = local.put_bytes(b"x", durable=False)

    def broken(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(StoreUnavailable, match="could not flush blobs to stable storage"):
        local.make_durable([blob.digest])


def test_an_unsynced_put_replaces_a_torn_copy_of_the_same_size(local: ArtifactStore) -> None:
    # What a crash can leave of a blob put without fsync: its name, its size, other bytes.
    data = b"0123456789" * 10
    blob = local.put_bytes(data, durable=False)
    torn = Path(local.url, rel_blob_path(blob.digest))
    torn.write_bytes(b"\0" * len(data))
    assert local.put_bytes(data, durable=False) == blob
    assert local.read_bytes(blob.digest) == data


def test_an_unsynced_put_of_an_intact_blob_writes_nothing(
    local: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = local.put_bytes(b"already here")

    def no_write(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an intact stored blob was written again")

    monkeypatch.setattr(local._backend, "open_write", no_write)
    assert local.put_bytes(b"already here", durable=False) == blob


def test_object_stores_are_durable_once_written() -> None:
    store = ArtifactStore("memory://keel-durable-test")
    blob = store.put_bytes(b"on an object store", durable=False)
    store.make_durable([blob.digest])  # nothing to do, and no error
    assert store.read_bytes(blob.digest) == b"on an object store"
    store.delete(blob.digest)
