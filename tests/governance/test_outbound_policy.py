"""The outbound policy (SSRF guard): which URLs webhooks may call, by default and allowed.

Refused URLs are only ever checked, never called: every request these tests send goes to a
receiver on 127.0.0.1 (or to 127.0.0.2, where nothing listens).
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from keel.config import reset_settings
from keel.errors import InvalidInput, KeelError
from keel.governance.outbound import (
    MAX_URL,
    OutboundPolicy,
    check_outbound_url,
    outbound_policy,
    resolve_outbound,
    shown_url,
)
from keel.monitoring.alerts.notifiers import send_webhook


@pytest.fixture
def settings(keel_env: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Return a setter of the outbound settings (as KEEL_* variables), starting from none."""
    monkeypatch.delenv("KEEL_OUTBOUND_ALLOW", raising=False)
    monkeypatch.delenv("KEEL_OUTBOUND_ALLOW_LOCAL", raising=False)
    reset_settings()

    def set_(allow: str | None = None, allow_local: bool | None = None) -> None:
        if allow is not None:
            monkeypatch.setenv("KEEL_OUTBOUND_ALLOW", allow)
        if allow_local is not None:
            monkeypatch.setenv("KEEL_OUTBOUND_ALLOW_LOCAL", str(allow_local).lower())
        reset_settings()

    return set_


@dataclass
class Receiver:
    """A recording HTTP endpoint on 127.0.0.1 that answers ``status`` (and ``location``)."""

    port: int
    status: int = 200
    location: str | None = None
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def receiver(wrap: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """Serve a :class:`Receiver` (over TLS with ``wrap``); yield it, then stop it."""
    got: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 100_000))
            got.requests.append({"path": self.path, "host": str(self.headers.get("Host"))})
            self.send_response(got.status)
            if got.location:
                self.send_header("Location", got.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if wrap is not None:
        server.socket = wrap.wrap_socket(server.socket, server_side=True)
    got = Receiver(server.server_port)
    thread = threading.Thread(target=server.serve_forever, name="outbound-receiver")
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


REFUSED = [
    ("http://127.0.0.1/hook", "127.0.0.1", "loopback"),
    ("http://127.8.9.10:8080/hook", "127.8.9.10", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
    ("http://10.1.2.3/hook", "10.1.2.3", "private"),
    ("http://172.16.0.1/hook", "172.16.0.1", "private"),
    ("http://172.31.255.254/hook", "172.31.255.254", "private"),
    ("http://192.168.1.1/hook", "192.168.1.1", "private"),
    ("http://100.64.0.1/hook", "100.64.0.1", "not a public address"),
    ("http://0.0.0.0:8000/", "0.0.0.0", "unspecified"),
    ("http://224.0.0.1/", "224.0.0.1", "multicast"),
    ("http://[::1]:9000/hook", "::1", "loopback"),
    ("http://[fc00::1]/hook", "fc00::1", "private"),
    ("http://[fd12:3456::7]/hook", "fd12:3456::7", "private"),
    ("http://[fe80::1]/hook", "fe80::1", "link-local"),
    ("http://[::ffff:127.0.0.1]/hook", "resolves to 127.0.0.1", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "resolves to 169.254.169.254", "link-local"),
    ("http://[64:ff9b::a9fe:a9fe]/", "as 169.254.169.254", "link-local"),
    ("http://[2002:7f00:1::]/", "as 127.0.0.1", "loopback"),
    # other spellings of 127.0.0.1 that the resolver reads as it
    ("http://2130706433/hook", "2130706433 resolves to 127.0.0.1", "loopback"),
    ("http://0x7f.1/hook", "0x7f.1 resolves to 127.0.0.1", "loopback"),
    ("http://0x7f000001/hook", "127.0.0.1", "loopback"),
    ("http://127.1/hook", "127.1 resolves to 127.0.0.1", "loopback"),
    ("http://LOCALHOST:8000/hook", "localhost resolves to 127.0.0.1", "loopback"),
]


@pytest.mark.parametrize(("url", "named", "why"), REFUSED)
def test_addresses_that_are_not_public_are_refused_by_default(
    settings: Callable[..., None], url: str, named: str, why: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_outbound_url(url, what="webhook")
    message = refused.value.message
    assert named in message
    assert why in message
    assert "KEEL_OUTBOUND_ALLOW" in message
    assert "KEEL_OUTBOUND_ALLOW_LOCAL=true" in message
    # the send-time check refuses it as well, before any connection
    with pytest.raises(InvalidInput):
        resolve_outbound(url, timeout=2)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://127.0.0.1:70/_HELO", "scheme 'gopher' is not allowed"),
        ("ftp://hooks.example.com/x", "scheme 'ftp' is not allowed"),
        ("dict://127.0.0.1:11211/stat", "scheme 'dict' is not allowed"),
        ("hooks.example.com/x", "scheme 'none' is not allowed"),
        ("", "the URL is empty"),
        ("   ", "the URL is empty"),
        ("http:///only-a-path", "names no host"),
        ("http://0177.0.0.1/", "is not a valid URL"),
        ("http://example.com/" + "a" * 10_000, f"at most {MAX_URL} are allowed"),
    ],
)
def test_what_is_not_an_http_url_is_refused(
    settings: Callable[..., None], url: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_outbound_url(url)
    assert message in refused.value.message
    assert len(refused.value.message) < 600


def test_a_non_string_url_is_invalid_input(settings: Callable[..., None]) -> None:
    with pytest.raises(InvalidInput, match="the URL is empty"):
        check_outbound_url(None)  # type: ignore[arg-type]


def test_errors_never_show_credentials_path_or_query(settings: Callable[..., None]) -> None:
    url = "http://admin:hunter2@127.0.0.1:8080/hooks/T0K3N?token=s3cret"
    with pytest.raises(InvalidInput) as refused:
        check_outbound_url(url)
    message = refused.value.message
    assert "http://127.0.0.1:8080 is refused" in message
    for secret in ("admin", "hunter2", "T0K3N", "s3cret"):
        assert secret not in message
    assert shown_url(url) == "http://127.0.0.1:8080"
    assert shown_url("http://[::1") == "<unparseable URL>"


def test_public_addresses_and_unresolvable_names_pass_when_stored(
    settings: Callable[..., None],
) -> None:
    check_outbound_url("https://93.184.216.34/hook")
    check_outbound_url("http://[2606:4700:4700::1111]:8443/hook")
    # a name that does not resolve (yet) passes when stored; the send-time check decides
    check_outbound_url("https://hooks.keel-test.invalid/T0/secret")
    with pytest.raises(KeelError, match="does not resolve") as unresolved:
        resolve_outbound("https://hooks.keel-test.invalid/T0/secret", timeout=2)
    assert "secret" not in unresolved.value.message


def test_allowed_by_address_by_network_and_by_host_name(settings: Callable[..., None]) -> None:
    settings(allow="127.0.0.1, 10.0.0.0/8, [::1], hooks.internal, *.corp.example")
    for url in (
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",  # it resolves to 127.0.0.1, which is allowed
        "http://0x7f.1/x",
        "http://10.20.30.40/x",
        "http://[::1]:9/x",
    ):
        check_outbound_url(url)
    for url in ("http://127.0.0.2/x", "http://192.168.0.1/x", "http://169.254.169.254/"):
        with pytest.raises(InvalidInput, match="is refused"):
            check_outbound_url(url)
    policy = outbound_policy()
    assert policy.allows_host("hooks.internal")
    assert policy.allows_host("a.b.corp.example")
    assert not policy.allows_host("corp.example")
    assert not policy.allows_host("evilcorp.example")
    assert not policy.allows_host("hooks.internal.evil.example")
    # allowed by name, a host is not resolved: it is sent as it is, unpinned
    assert resolve_outbound("http://hooks.internal/x").addresses == ()


def test_a_wider_network_allows_every_spelling_in_it(settings: Callable[..., None]) -> None:
    settings(allow="127.0.0.0/8,::1")
    for url in ("http://127.8.9.10/", "http://2130706433/", "http://[::ffff:127.0.0.1]/"):
        check_outbound_url(url)


def test_allow_local_allows_every_address_but_not_other_schemes(
    settings: Callable[..., None],
) -> None:
    settings(allow_local=True)
    for url in ("http://169.254.169.254/", "http://10.0.0.1/", "http://[fc00::1]/"):
        check_outbound_url(url)
    with pytest.raises(InvalidInput, match="scheme 'file'"):
        check_outbound_url("file:///etc/passwd")


def test_a_bad_allow_list_entry_is_named(settings: Callable[..., None]) -> None:
    settings(allow="127.0.0.1,not a host!")
    with pytest.raises(InvalidInput, match=r"KEEL_OUTBOUND_ALLOW.*'not a host!'"):
        check_outbound_url("http://127.0.0.1/")
    with pytest.raises(InvalidInput, match=re.escape("10.0.0.0/33")):
        OutboundPolicy.parse("10.0.0.0/33")


def test_a_local_receiver_is_refused_by_default_and_reached_when_allowed(
    settings: Callable[..., None],
) -> None:
    body = {"source": "keel", "event": "firing"}
    with receiver() as hook:
        spec = {"type": "webhook", "url": f"{hook.url}/hook?token=abc", "timeout": 5.0}
        with pytest.raises(InvalidInput, match="is refused") as refused:
            send_webhook(spec, body)
        assert "token=abc" not in refused.value.message
        assert hook.requests == []
        settings(allow="127.0.0.1")
        assert send_webhook(spec, body) == 200
    assert hook.requests == [{"path": "/hook?token=abc", "host": f"127.0.0.1:{hook.port}"}]


def test_a_url_from_the_environment_is_checked_before_sending(
    settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    with receiver() as hook:
        monkeypatch.setenv("KEEL_TEST_HOOK_URL", f"{hook.url}/from-env")
        spec = {"type": "slack", "url_env": "KEEL_TEST_HOOK_URL", "timeout": 5.0}
        with pytest.raises(InvalidInput, match=r"slack URL: .* is refused"):
            send_webhook(spec, {"text": "x"})
    assert hook.requests == []


def test_a_redirect_is_not_followed(settings: Callable[..., None]) -> None:
    settings(allow="127.0.0.1")
    with receiver() as inner, receiver() as outer:
        outer.status, outer.location = 302, f"http://localhost:{inner.port}/internal"
        with pytest.raises(KeelError, match="answered HTTP 302, a redirect, which Keel does not"):
            send_webhook({"type": "webhook", "url": f"{outer.url}/hook"}, {"a": 1})
        assert len(outer.requests) == 1
    assert inner.requests == []


def test_the_request_goes_to_the_address_checked_not_a_rebound_one(
    settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers 127.0.0.1 (allowed) to the check, then 127.0.0.2
    (where nothing listens). The request must reach the checked address, with the name as
    its Host header, and the name must be looked up once only."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "127.0.0.2", "127.0.0.2"])
    asked: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.test":
            asked.append(host)
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    settings(allow="127.0.0.1")
    with receiver() as hook:
        url = f"http://hooks.rebind.test:{hook.port}/hook"
        assert send_webhook({"type": "webhook", "url": url}, {"a": 1}) == 200
    assert asked == ["hooks.rebind.test"]  # the check before sending; httpx got the address
    assert hook.requests == [{"path": "/hook", "host": f"hooks.rebind.test:{hook.port}"}]


def test_a_name_that_rebinds_to_a_refused_address_is_refused_at_send_time(
    settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34", "127.0.0.1"])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.test":
            return real(next(answers), port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    check_outbound_url("http://hooks.rebind.test/hook")  # stored: it was public then
    with pytest.raises(InvalidInput, match=re.escape("hooks.rebind.test resolves to 127.0.0.1")):
        send_webhook({"type": "webhook", "url": "http://hooks.rebind.test/hook"}, {"a": 1})


def test_a_name_with_one_refused_address_among_public_ones_is_refused(
    settings: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def two(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.mixed.test":
            return real("93.184.216.34", port, *args, **kwargs) + real(
                "169.254.169.254", port, *args, **kwargs
            )
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two)
    with pytest.raises(InvalidInput, match=re.escape("resolves to 169.254.169.254, link-local")):
        check_outbound_url("https://hooks.mixed.test/")


def _self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    """Write a self-signed certificate for DNS name ``name`` and its key; return both."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize("cert_name", ["hooks.tls.test", "someone-else.test"])
def test_a_pinned_https_request_verifies_the_certificate_against_the_name(
    settings: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cert_name: str,
) -> None:
    """The request connects to the checked address, but TLS still sends the URL's name
    (SNI) and verifies the server's certificate against it, not against the address."""
    cert_file, key_file = _self_signed(tmp_path, cert_name)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # httpx trusts it as a CA
    real = socket.getaddrinfo

    def local(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "hooks.tls.test" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local)
    settings(allow="127.0.0.1")
    seen: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: seen.append(name)  # type: ignore[assignment]
    with receiver(wrap=context) as hook:
        spec = {"type": "webhook", "url": f"https://hooks.tls.test:{hook.port}/hook"}
        if cert_name == "hooks.tls.test":
            assert send_webhook(spec, {"a": 1}) == 200
            assert hook.requests == [{"path": "/hook", "host": f"hooks.tls.test:{hook.port}"}]
        else:
            with pytest.raises(KeelError, match="is unreachable"):
                send_webhook(spec, {"a": 1})
            assert hook.requests == []
    assert seen[:1] == ["hooks.tls.test"]


def test_an_alert_whose_webhook_is_no_longer_allowed_records_the_refusal(
    settings: Callable[..., None],
) -> None:
    """The rule was stored while 127.0.0.1 was allowed; once it is not, firing sends
    nothing and the refusal is recorded on the alert (notifier and action alike)."""
    from keel.monitoring import alerts as ka
    from keel.monitoring.alerts.runner import run_pass
    from keel.stores import current_stores

    settings(allow="127.0.0.1")
    with receiver() as hook:
        webhook = {"type": "webhook", "url": f"{hook.url}/hook", "timeout": 2}
        ka.add_alert_rule("errors", deployment="churn-prod", metric="error_rate", op=">",
                          threshold=0.1, notifiers=[webhook], actions=[webhook])  # fmt: skip
        settings(allow="")
        figures = lambda *_, **__: {"error_rate": 0.5}  # noqa: E731
        report = run_pass(current_stores(), figure_source=figures)
        assert hook.requests == []
    assert any("is refused" in e for e in report.errors["errors"])
    events = ka.get_alert_events(rule="errors")
    assert [e.kind for e in events] == ["firing", "error", "action_failed"]
    for event in events[1:]:
        assert "127.0.0.1 is loopback" in str(event.detail)
        assert "KEEL_OUTBOUND_ALLOW" in str(event.detail)
