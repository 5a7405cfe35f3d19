"""The outbound-request policy: which URLs the server may call for a user (SSRF guard).

An editor who may add an alert rule chooses the URL its webhook notifier or action POSTs
to, and that request comes from the server, inside its network. Without a policy the rule
could make the server call ``http://127.0.0.1:…`` (its own admin ports), the cloud
metadata service ``http://169.254.169.254/`` or any private address. So by default an
outbound URL must be ``http``/``https`` and every address its host resolves to must be
public. Two settings open it, as GitLab's "allow requests to the local network" and its
allow-list do:

- ``outbound_allow`` (``KEEL_OUTBOUND_ALLOW``): comma-separated host names
  (``hooks.internal``, or ``*.corp.example`` for its subdomains), addresses
  (``127.0.0.1``, ``::1``) and networks (``10.0.0.0/8``) that may be called anyway;
- ``outbound_allow_local`` (``KEEL_OUTBOUND_ALLOW_LOCAL=true``): any address at all.

A URL is checked twice: when the rule is stored (:func:`check_outbound_url`, a clear
``InvalidInput`` for the editor) and right before each request (:func:`resolve_outbound`,
whose checked addresses :func:`stream_outbound` connects to, so a DNS answer that changes
in between — rebinding — cannot send the request elsewhere). Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_URL",
    "OutboundPolicy",
    "OutboundTarget",
    "check_outbound_url",
    "outbound_policy",
    "resolve_outbound",
    "shown_url",
    "stream_outbound",
]

MAX_URL = 2_000  # characters; no webhook needs more, and a huge one is refused unparsed
SCHEMES = ("http", "https")
CREATE_TIMEOUT_S = 5.0  # seconds a lookup may take when a rule is stored
_SETTING_HINT = (
    "KEEL_OUTBOUND_ALLOW (outbound_allow in config.toml: comma-separated host names, "
    "addresses or networks such as 10.0.0.0/8), or set KEEL_OUTBOUND_ALLOW_LOCAL=true to "
    "allow every address"
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 forms that carry an IPv4 address a gateway may forward to: NAT64 (RFC 6052, 8215)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class OutboundPolicy:
    """The allow-list in force: host names (``*.`` prefix for subdomains), networks, and
    whether every address is allowed."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()
    allow_local: bool = False

    @classmethod
    def parse(cls, allow: str | Sequence[str], *, allow_local: bool = False) -> OutboundPolicy:
        """Return the policy of an allow-list (a comma-separated string or a list);
        ``InvalidInput`` naming the entry that is neither a host name nor a network."""
        entries = allow.split(",") if isinstance(allow, str) else list(allow)
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in entries:
            entry = str(raw).strip().lower()
            if not entry:
                continue
            bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
            try:
                networks.append(ipaddress.ip_network(bare, strict=False))
                continue
            except ValueError:
                pass
            name = entry[2:] if entry.startswith("*.") else entry
            labels = name.split(".")
            if len(entry) > 253 or not all(
                0 < len(label) <= 63
                and label.replace("-", "").replace("_", "").isalnum()
                and label.isascii()
                for label in labels
            ):
                raise InvalidInput(
                    f"outbound_allow (KEEL_OUTBOUND_ALLOW): {entry[:80]!r} is neither a host "
                    "name (*.example.com for subdomains), an address nor a network such as "
                    "10.0.0.0/8"
                )
            hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks), allow_local)

    def allows_host(self, host: str) -> bool:
        """Return whether ``host`` (lowercase, as the URL names it) is allow-listed by name."""
        host = host.lower().rstrip(".")
        if host in self.hosts:
            return True
        return any(entry.startswith("*.") and host.endswith(entry[1:]) for entry in self.hosts)

    def refusal(self, address: Address) -> str | None:
        """Return why ``address`` may not be called (``None`` if it may)."""
        if self.allow_local:
            return None
        if any(address.version == net.version and address in net for net in self.networks):
            return None
        return _not_public(address)


def _not_public(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            why = _not_public(embedded)
            return None if why is None else f"{why}, as {embedded}"
    for flag, why in (
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local, e.g. cloud metadata"),
        ("is_unspecified", "unspecified"),
        ("is_multicast", "multicast"),
        ("is_private", "private network"),
        ("is_reserved", "reserved"),
    ):
        if getattr(address, flag):
            return why
    if not address.is_global:
        return "not a public address"
    return None


def outbound_policy() -> OutboundPolicy:
    """Return the policy the current settings give (``outbound_allow``,
    ``outbound_allow_local``)."""
    from keel.config import get_settings

    settings = get_settings()
    return OutboundPolicy.parse(settings.outbound_allow, allow_local=settings.outbound_allow_local)


def shown_url(url: str) -> str:
    """Return ``url`` as an error may show it: scheme, host and port only — never the
    user name, password, path or query, which may carry secrets."""
    import httpx

    try:
        parsed = httpx.URL(url)
        netloc = parsed.netloc.decode("ascii")
    except (httpx.InvalidURL, TypeError, UnicodeError):
        return "<unparseable URL>"
    return f"{parsed.scheme}://{netloc}" if parsed.scheme else "<URL without a scheme>"


@dataclass(frozen=True)
class OutboundTarget:
    """A URL that passed the policy, and the checked addresses to connect to; with no
    addresses (its host is allow-listed by name, or every address is allowed) it is sent
    as it is."""

    url: httpx.URL
    addresses: tuple[str, ...]

    @property
    def shown(self) -> str:
        """The URL as errors show it (see :func:`shown_url`)."""
        return shown_url(str(self.url))


def _parse(url: object, what: str) -> httpx.URL:
    import httpx

    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"{what}: the URL is empty; give an http:// or https:// URL")
    if len(url) > MAX_URL:
        raise InvalidInput(
            f"{what}: the URL has {len(url)} characters; at most {MAX_URL} are allowed"
        )
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, UnicodeError) as exc:
        raise InvalidInput(f"{what}: {shown_url(url)} is not a valid URL ({exc})") from None
    if parsed.scheme not in SCHEMES:
        scheme = parsed.scheme or "none"
        raise InvalidInput(
            f"{what}: scheme {scheme[:20]!r} is not allowed; only http:// and https:// "
            "URLs are called"
        )
    if not parsed.raw_host:
        raise InvalidInput(f"{what}: {shown_url(url)} names no host")
    return parsed


_resolver: ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()


def _resolve(host: str, port: int, timeout: float) -> list[Address]:
    """Return every address ``host`` resolves to (A and AAAA); ``OSError`` if none, and
    ``TimeoutError`` past ``timeout`` (a stuck resolver must not hold a request)."""
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            # getaddrinfo has no timeout of its own: a worker thread bounds the wait
            _resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="keel-outbound-dns")
        future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except FutureTimeout:
        raise TimeoutError(f"resolving {host} took over {timeout:g} s") from None
    out: list[Address] = []
    for family, *_rest, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # an IPv6 scope ("fe80::1%eth0") is not part of the address
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            # ::ffff:a.b.c.d is a.b.c.d on the wire: check (and allow-list) it as that
            address = address.ipv4_mapped
        if address not in out:
            out.append(address)
    if not out:
        raise OSError(f"{host} has no IPv4 or IPv6 address")
    return out


def _check(
    parsed: httpx.URL, policy: OutboundPolicy, what: str, timeout: float, *, strict: bool
) -> tuple[str, ...] | None:
    """Return the checked addresses to pin, ``None`` when the URL is sent unpinned (allowed
    by name or allow-all), or raise. An unresolvable host raises only when ``strict``."""
    host = parsed.raw_host.decode("ascii")
    if policy.allow_local or policy.allows_host(host):
        return None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    shown = shown_url(str(parsed))
    try:
        addresses = _resolve(host, port, timeout)
    except (OSError, UnicodeError, TimeoutError) as exc:
        if not strict:
            return ()
        raise KeelError(
            f"{what}: {shown} is unreachable (its host does not resolve: {exc})"
        ) from None
    for address in addresses:
        why = policy.refusal(address)
        if why is not None:
            literal = host.strip("[]") == str(address)
            where = f"{address} is" if literal else f"host {host} resolves to {address},"
            name = address if literal else host
            raise InvalidInput(
                f"{what}: {shown} is refused: {where} {why}, and Keel calls only public "
                f"addresses unless told otherwise; to allow it add {name} to {_SETTING_HINT}"
            )
    return tuple(str(a) for a in addresses)


def check_outbound_url(
    url: str, *, what: str = "outbound URL", policy: OutboundPolicy | None = None
) -> None:
    """Refuse (``InvalidInput``) a URL the server may not call: a scheme other than http(s),
    more than ``MAX_URL`` characters, or a host that resolves to any address that is not
    public and not allow-listed. The message shows the URL's scheme, host and port only
    and names the setting that would allow it.

    A host that does not resolve (yet) passes: the check before each request refuses it
    then, whatever it resolves to by that time."""
    parsed = _parse(url, what)
    _check(parsed, policy or outbound_policy(), what, CREATE_TIMEOUT_S, strict=False)


def resolve_outbound(
    url: str,
    *,
    what: str = "outbound URL",
    timeout: float = CREATE_TIMEOUT_S,
    policy: OutboundPolicy | None = None,
) -> OutboundTarget:
    """Check ``url`` as :func:`check_outbound_url` does, right before a request, and
    return it with the addresses to connect to; ``KeelError`` if its host does not
    resolve within ``timeout`` seconds."""
    parsed = _parse(url, what)
    pinned = _check(parsed, policy or outbound_policy(), what, timeout, strict=True)
    return OutboundTarget(parsed, pinned or ())


@contextmanager
def stream_outbound(
    method: str,
    target: OutboundTarget,
    *,
    content: bytes = b"",
    headers: Mapping[str, str] | None = None,
    timeout: float = CREATE_TIMEOUT_S,
) -> Iterator[httpx.Response]:
    """Send one request to ``target`` and yield its response unread (streamed).

    A pinned target connects to its checked addresses in turn (the next one only when a
    connection could not be made, so nothing was sent), with the URL's host as the
    ``Host`` header and the TLS server name, so its certificate is verified against the
    name, not the address. Redirects are not followed: a 3xx is the answer.
    """
    import httpx

    request_headers: dict[str, Any] = dict(headers or {})
    with ExitStack() as stack:
        client = stack.enter_context(httpx.Client(timeout=timeout, follow_redirects=False))
        if not target.addresses:
            yield stack.enter_context(
                client.stream(method, target.url, content=content, headers=request_headers)
            )
            return
        request_headers["Host"] = target.url.netloc.decode("ascii")
        sni = {"sni_hostname": target.url.raw_host.decode("ascii")}
        response: httpx.Response | None = None
        for i, address in enumerate(target.addresses):
            opened = client.stream(
                method,
                target.url.copy_with(host=address),
                content=content,
                headers=request_headers,
                extensions=sni,
            )
            try:
                response = stack.enter_context(opened)
                break
            except httpx.ConnectError:
                if i == len(target.addresses) - 1:
                    raise
        if response is not None:
            yield response
