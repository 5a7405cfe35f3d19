"""Real local receivers for notifier tests: an HTTP server and an SMTP server on 127.0.0.1.

``http_receiver()`` records every request (method, path, headers, JSON body) and answers
with the status a test sets; ``smtp_receiver()`` is aiosmtpd's ``Controller`` recording
every message, optionally demanding a login. Both bind 127.0.0.1 on a free port and stop
when the ``with`` block ends.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["HttpReceiver", "SmtpReceiver", "http_receiver", "smtp_receiver"]


@dataclass
class HttpReceiver:
    """What the HTTP receiver got, and what it answers."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    got: threading.Event = field(default_factory=threading.Event)

    def bodies(self) -> list[Any]:
        """Return the JSON body of every request so far."""
        return [r["json"] for r in self.requests]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    """Serve a recording HTTP endpoint on 127.0.0.1; yield it, then stop it."""
    receiver: HttpReceiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = min(int(self.headers.get("Content-Length") or 0), 1_000_000)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            receiver.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": body}
            )
            receiver.got.set()
            self.send_response(receiver.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = HttpReceiver(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, name="alerts-http-receiver")
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class SmtpReceiver:
    """What the SMTP receiver got."""

    host: str
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    ca_file: str | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key; return their paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def smtp_receiver(
    *, password: str | None = None, tls_folder: Path | None = None
) -> Iterator[SmtpReceiver]:
    """Serve a recording SMTP server on 127.0.0.1 (a login with ``password`` required if
    given; STARTTLS required, with a self-signed certificate written to ``tls_folder``,
    if that is given: ``receiver.ca_file`` is the certificate to trust); yield it, then
    stop it."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    receiver = SmtpReceiver("127.0.0.1", _free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            )
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        login, secret = data.login.decode(), data.password.decode()
        receiver.logins.append((login, secret))
        return AuthResult(success=secret == password, handled=False)

    extra: dict[str, Any] = {}
    if password is not None:
        # AUTH over plain SMTP is fine on 127.0.0.1 (requiring it makes aiosmtpd warn)
        extra = {"authenticator": authenticate, "auth_require_tls": tls_folder is not None}
    if tls_folder is not None:
        cert, key = self_signed(tls_folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        extra.update(tls_context=context, require_starttls=True)
        receiver.ca_file = str(cert)
    # The port is picked, then bound: another process can take it in between, so a
    # failed bind retries on a fresh port.
    for attempt in range(5):
        controller = Controller(Handler(), hostname=receiver.host, port=receiver.port, **extra)
        try:
            controller.start()
            break
        except OSError:
            controller.loop.close()  # its thread ended when the bind failed
            if attempt == 4:
                raise
            receiver.port = _free_port()
    try:
        yield receiver
    finally:
        controller.stop()
