"""Store fixtures: a local S3 endpoint (moto in server mode, bound to 127.0.0.1)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

S3_BUCKET = "keel-test"
S3_CREDENTIALS = {"key": "testing", "secret": "testing"}


def _moto_handler() -> type:
    from moto.server import MotoRequestHandler

    class QuietMotoHandler(MotoRequestHandler):
        """moto's request handler, minus werkzeug's ``Server`` header and request log.

        moto (5.2.5 here) sends ``server: amazon.com`` and werkzeug's base handler adds
        ``Server: Werkzeug/…``; aiohttp >= 3.13.4, which aiobotocore and so s3fs use,
        rejects a response carrying two Server headers (getmoto/moto#9930).
        ``moto.server.ThreadedMotoServer`` hard-codes its handler, hence this server.
        """

        def send_response(self, code: int, message: str | None = None) -> None:
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    return QuietMotoHandler


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Yield the URL of a moto S3 server on 127.0.0.1 (a free port) with one bucket."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
    boto3 = pytest.importorskip("boto3", reason="boto3 is not installed")
    pytest.importorskip("s3fs", reason="s3fs is not installed (the 's3' extra)")
    from werkzeug.serving import make_server

    app = moto_server.DomainDispatcherApplication(moto_server.create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_moto_handler())
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    endpoint = f"http://{host}:{port}"
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=S3_CREDENTIALS["key"],
            aws_secret_access_key=S3_CREDENTIALS["secret"],
        )
        try:
            client.create_bucket(Bucket=S3_BUCKET)
        finally:
            client.close()
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()  # shutdown() only stops the loop; this closes the socket
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def s3_bucket(s3_endpoint: str) -> str:
    """Return the name of the bucket the moto endpoint was started with."""
    return S3_BUCKET


@pytest.fixture(scope="session")
def s3_storage_options(s3_endpoint: str) -> dict[str, Any]:
    """Return s3fs storage options pointing at the moto endpoint."""
    return {**S3_CREDENTIALS, "client_kwargs": {"endpoint_url": s3_endpoint}}


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Iterator[Any]:
    """Yield a boto3 S3 client for the moto endpoint (to tamper with objects directly)."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_CREDENTIALS["key"],
        aws_secret_access_key=S3_CREDENTIALS["secret"],
    )
    yield client
    client.close()
