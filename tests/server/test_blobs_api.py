"""The blob REST API: streamed upload and download, digests checked, bad digests 4xx."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API = "/api/v1/blobs"


@pytest.fixture
def client(keel_env: Any, tmp_path: Path) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(tmp_path / "server-home"))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _digest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def _error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == code
    return body["message"]


def test_a_blob_goes_up_and_comes_back(client: TestClient) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MB: more than one chunk each way

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(data), 100_000):
            yield data[i : i + 100_000]

    digest = _digest(data)
    assert client.head(f"{API}/{digest}").status_code == 404
    response = client.put(f"{API}/{digest}", content=chunks())
    assert response.status_code == 200, response.text
    assert response.json() == {"digest": digest, "size": len(data)}
    assert client.head(f"{API}/{digest}").status_code == 200
    got = client.get(f"{API}/{digest}")
    assert got.status_code == 200
    assert got.headers["content-length"] == str(len(data))
    assert got.content == data


def test_an_upload_that_does_not_match_its_digest_stores_nothing(client: TestClient) -> None:
    claimed = _digest(b"what I said")
    message = _error(client.put(f"{API}/{claimed}", content=b"what I sent"), 400,
                     "INTEGRITY_ERROR")  # fmt: skip
    assert claimed in message
    assert _digest(b"what I sent") in message
    assert client.head(f"{API}/{claimed}").status_code == 404
    _error(client.get(f"{API}/{claimed}"), 404, "NOT_FOUND")


@pytest.mark.parametrize("bad", ["abc", "A" * 64, "g" * 64, "..%2F..%2Fetc", "0" * 65, "%00"])
def test_bad_digests_are_refused(client: TestClient, bad: str) -> None:
    for response in (client.get(f"{API}/{bad}"), client.put(f"{API}/{bad}", content=b"x")):
        assert response.status_code in (400, 404), response.text
        assert set(response.json()) == {"error_code", "message"}
    if "%2F" not in bad:
        _error(client.get(f"{API}/{bad}"), 400, "INVALID_INPUT")
        assert client.head(f"{API}/{bad}").status_code == 400


def test_the_empty_blob_is_a_blob(client: TestClient) -> None:
    digest = _digest(b"")
    assert client.put(f"{API}/{digest}", content=b"").json() == {"digest": digest, "size": 0}
    assert client.get(f"{API}/{digest}").content == b""
