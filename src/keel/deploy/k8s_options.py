"""Names and options for the Kubernetes render: DNS-1035 names, label values, checked options.

Kubernetes refuses names that are not DNS labels, label values past 63 characters, and
malformed quantities only when the manifests are applied; these checks refuse them when
they are rendered, naming the bad value, so ``keel deploy render`` fails with exit code 2
instead of writing files a cluster will reject.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from keel.errors import InvalidInput

__all__ = [
    "MAX_LABEL",
    "SERVE_PORT",
    "K8sOptions",
    "check_image",
    "check_namespace",
    "dns_label",
    "hashed_label",
    "label_value",
]

SERVE_PORT = 8080
MAX_LABEL = 63
_HASH_HEX = 8
_DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
_QUANTITY = re.compile(r"(\d+(\.\d+)?|\.\d+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?\d+)?")
# An image reference: registry/path:tag@digest, no spaces, quotes or control characters.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@+]{0,1023}")
_PATH = re.compile(r"/[-A-Za-z0-9/._~!$&'()*+,;=:@%]{0,1023}")


def dns_label(*parts: str) -> str:
    """Return a DNS-1035 label (at most 63 characters) naming ``parts``, stable per input.

    Clean parts joined by '-' are kept as they are; anything changed on the way (case,
    characters, truncation) gets a hash of the exact parts appended, so ``churn_a`` and
    ``churn-a`` never share a name.
    """
    joined = "-".join(parts)
    clean = re.sub(r"[^a-z0-9]+", "-", joined.lower()).strip("-")
    if not clean[:1].isalpha():
        clean = f"k-{clean}".rstrip("-")
    if clean == joined and len(clean) <= MAX_LABEL:
        return clean
    return hashed_label(clean, parts)


def hashed_label(base: str, parts: Sequence[str]) -> str:
    """Return ``base`` cut to fit a label with a hash of the exact ``parts`` appended."""
    # NUL cannot occur in a name, so distinct part lists never hash the same text.
    key = "\0".join(parts).encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(key, digest_size=_HASH_HEX // 2).hexdigest()
    return f"{base[: MAX_LABEL - _HASH_HEX - 1].rstrip('-')}-{digest}"


def label_value(value: str) -> str:
    """Return ``value`` as a label value: itself when valid, else a hashed clean form."""
    if re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", value):
        return value
    return dns_label(value)


@dataclass(frozen=True, kw_only=True)
class K8sOptions:
    """How the manifests run the model servers; every field is checked on construction.

    ``tracking_uri`` (and ``artifact_uri``) is where the pods find the registry: a
    PostgreSQL URL or a Keel server's ``https://`` URL, never one holding a password.
    ``token_secret`` names a Secret whose ``token_secret_key`` holds the API token.
    """

    tracking_uri: str | None = None
    artifact_uri: str | None = None
    token_secret: str | None = None
    token_secret_key: str = "token"  # noqa: S105 - the key's name inside the Secret
    gateway: str = "keel-gateway"
    gateway_namespace: str | None = None
    hostnames: tuple[str, ...] = ()
    path_prefix: str = "/"
    min_replicas: int = 1
    max_replicas: int = 4
    target_cpu_percent: int = 70
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    image_pull_policy: str = "IfNotPresent"

    def __post_init__(self) -> None:
        for name in ("tracking_uri", "artifact_uri"):
            uri = getattr(self, name)
            if uri is not None:
                _check_uri(name.replace("_", " "), uri)
        if self.token_secret is not None:
            _check(_DNS_SUBDOMAIN, self.token_secret, "token secret name", 253)
        _check(_SECRET_KEY, self.token_secret_key, "token secret key", 253)
        _check(_DNS_SUBDOMAIN, self.gateway, "gateway name", 253)
        if self.gateway_namespace is not None:
            _check(_DNS_LABEL, self.gateway_namespace, "gateway namespace", MAX_LABEL)
        if len(self.hostnames) > 16:
            raise InvalidInput("at most 16 hostnames fit one HTTPRoute")
        for host in self.hostnames:
            _check(_HOSTNAME, host, "hostname", 253)
        _check(_PATH, self.path_prefix, "path prefix", 1024)
        if not 1 <= self.min_replicas <= self.max_replicas <= 1000:
            raise InvalidInput(
                f"replicas must satisfy 1 <= min ({self.min_replicas}) <= max "
                f"({self.max_replicas}) <= 1000"
            )
        if not 1 <= self.target_cpu_percent <= 1000:
            raise InvalidInput(f"target CPU {self.target_cpu_percent}% must be 1..1000")
        for name in ("cpu_request", "memory_request", "cpu_limit", "memory_limit"):
            _check(_QUANTITY, getattr(self, name), name.replace("_", " "), 64)
        if self.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise InvalidInput(
                f"image pull policy {self.image_pull_policy!r} must be Always, IfNotPresent "
                "or Never"
            )


def _check(pattern: re.Pattern[str], value: object, what: str, max_len: int) -> None:
    """Raise ``InvalidInput`` naming ``what`` unless ``value`` is a string matching ``pattern``."""
    if not isinstance(value, str) or len(value) > max_len or not pattern.fullmatch(value):
        raise InvalidInput(
            f"{what} {value!r} is not valid for Kubernetes (at most {max_len} characters "
            f"matching {pattern.pattern})"
        )


def _check_uri(what: str, uri: object) -> None:
    if not isinstance(uri, str) or not uri or len(uri) > 2048 or not uri.isprintable():
        raise InvalidInput(f"{what} must be a printable URL of at most 2048 characters")
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError as exc:
        raise InvalidInput(f"{what} {uri!r} is not a URL: {exc}") from None
    if password is not None:
        raise InvalidInput(
            f"{what} holds a password, which would be written into the manifests in clear: "
            "pass it without credentials (PostgreSQL: a .pgpass or PG* variables from a "
            "Secret; a Keel server: --token-secret)"
        )
    if parts.scheme.lower() == "sqlite":
        raise InvalidInput(
            f"{what} {uri!r} is a SQLite file, which pods cannot share: use PostgreSQL or "
            "a Keel server's URL"
        )


def check_image(image: object) -> None:
    """Raise ``InvalidInput`` unless ``image`` is a plain image reference (no spaces)."""
    _check(_IMAGE, image, "image", 1024)


def check_namespace(namespace: object) -> None:
    """Raise ``InvalidInput`` unless ``namespace`` is a DNS label, as Kubernetes requires."""
    _check(_DNS_LABEL, namespace, "namespace", MAX_LABEL)
