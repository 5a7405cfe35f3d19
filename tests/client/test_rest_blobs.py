"""``RestBlobStore`` against a live Keel server: dedup, streaming, verification both ends."""

from __future__ import annotations

import io
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
from tests.live_server import running_server

from keel.client.artifacts import RestBlobStore
from keel.client.http import KeelHttp
from keel.errors import IntegrityError, InvalidInput
from keel.store.artifacts import BlobStore


@pytest.fixture
def server(keel_env: Any, tmp_path: Path) -> Iterator[tuple[RestBlobStore, Path]]:
    home = tmp_path / "server-home"
    with running_server(home) as url:
        http = KeelHttp(url)
        try:
            yield RestBlobStore(http), home
        finally:
            http.close()


def _stored_file(home: Path, digest: str) -> Path:
    (path,) = [p for p in home.rglob(digest) if p.is_file()]
    return path


def test_it_is_a_blob_store_and_round_trips_every_way(
    server: tuple[RestBlobStore, Path], tmp_path: Path
) -> None:
    store, _ = server
    assert isinstance(store, BlobStore)
    data = os.urandom(3 * (1 << 20) + 17)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    blob = store.put_file(source)
    assert blob.digest == blake3.blake3(data).hexdigest()
    assert blob.size == len(data)
    assert store.exists(blob.digest)
    assert store.put_stream(io.BytesIO(data)) == blob
    assert store.put_stream(io.BytesIO(data), expected_digest=blob.digest) == blob
    assert store.read_bytes(blob.digest) == data
    dest = store.get_file(blob.digest, tmp_path / "out" / "model.bin")
    assert dest.read_bytes() == data
    with store.open_verified(blob.digest) as f:
        assert f.read() == data
    small = store.put_bytes(b"hello")
    assert store.read_bytes(small.digest) == b"hello"


def test_a_file_already_on_the_server_is_not_uploaded_again(
    server: tuple[RestBlobStore, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = server
    source = tmp_path / "a.txt"
    source.write_bytes(b"same bytes")
    store.put_file(source)
    puts: list[str] = []
    original = store.http.request

    def counting(method: str, path: str, **kwargs: Any) -> Any:
        puts.append(method)
        return original(method, path, **kwargs)

    monkeypatch.setattr(store.http, "request", counting)
    store.put_file(source)
    store.put_bytes(b"same bytes")
    assert "PUT" not in puts


def test_a_stream_with_the_wrong_digest_is_refused(server: tuple[RestBlobStore, Path]) -> None:
    store, _ = server
    wrong = blake3.blake3(b"other").hexdigest()
    with pytest.raises(IntegrityError, match=wrong):
        store.put_stream(io.BytesIO(b"payload"), expected_digest=wrong)
    assert not store.exists(wrong)
    with pytest.raises(InvalidInput, match="64 lowercase"):
        store.exists("../../etc/passwd")


def test_a_blob_tampered_with_on_the_server_is_refused_by_the_client(
    server: tuple[RestBlobStore, Path], tmp_path: Path
) -> None:
    store, home = server
    data = os.urandom(2 * (1 << 20))
    blob = store.put_bytes(data)
    stored = _stored_file(home, blob.digest)
    damaged = bytearray(data)
    damaged[1_000_000] ^= 0xFF
    stored.write_bytes(bytes(damaged))
    actual = blake3.blake3(bytes(damaged)).hexdigest()
    dest = tmp_path / "model.bin"
    dest.write_bytes(b"previous")
    with pytest.raises(IntegrityError, match=f"'model/model.bin'.*{blob.digest}.*{actual}"):
        store.get_file(blob.digest, dest, name="model/model.bin")
    assert dest.read_bytes() == b"previous"  # untouched, no partial file beside it
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
    with pytest.raises(IntegrityError, match="corrupted"):
        store.read_bytes(blob.digest)
    with pytest.raises(IntegrityError, match="corrupted"), store.open_verified(blob.digest) as f:
        f.read()


def test_a_missing_blob_is_an_integrity_error_naming_it(
    server: tuple[RestBlobStore, Path], tmp_path: Path
) -> None:
    store, _ = server
    digest = "0" * 64
    with pytest.raises(IntegrityError, match=r"'weights\.bin' is missing"):
        store.get_file(digest, tmp_path / "w.bin", name="weights.bin")
    assert not (tmp_path / "w.bin").exists()


def test_a_large_artifact_never_sits_in_memory(
    server: tuple[RestBlobStore, Path], tmp_path: Path
) -> None:
    store, _ = server
    size = 200 * (1 << 20)
    source = tmp_path / "big.bin"
    hasher = blake3.blake3()
    with open(source, "wb") as f:
        for _ in range(size >> 20):
            chunk = os.urandom(1 << 20)
            hasher.update(chunk)
            f.write(chunk)
    tracemalloc.start()
    try:
        blob = store.put_file(source)
        dest = store.get_file(blob.digest, tmp_path / "back.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.digest == hasher.hexdigest()
    assert dest.stat().st_size == size
    # Client and server both run in this process: together they held a few chunks at most.
    assert peak < 32 * (1 << 20), f"peak {peak / 2**20:.1f} MiB moving {size >> 20} MiB"


def test_a_small_tampered_blob_is_refused_too(server: tuple[RestBlobStore, Path]) -> None:
    store, home = server
    blob = store.put_bytes(b"x" * 2000)
    _stored_file(home, blob.digest).write_bytes(b"y" * 2000)
    with pytest.raises(IntegrityError, match="corrupted"):
        store.read_bytes(blob.digest)
