"""The configurations of a rule's notifiers and actions: checked, normalised, masked.

A notifier or action is a mapping with a ``type``; a bare string is shorthand for
``{"type": <string>}``. Notifier types: ``log`` (``level``), ``webhook`` and ``slack``
(``url`` or ``url_env``, ``headers``, ``timeout``), ``email`` (``host``, ``port``, ``from``,
``to``, ``starttls``, ``ssl``, ``ca_file`` (CA certificates to trust besides the system's),
``username``, ``password`` or ``password_env``, ``timeout``). Action types: ``rollback``,
``abort_canary``, ``pause_canary``, ``webhook`` (as the notifier), ``trigger``
(``payload``), and any registered with ``register_alert_action``.

``check_notifier`` and ``check_action`` check a configuration's form only, without I/O (they
also run on rules read back from the store); ``check_outbound`` adds the outbound policy,
which resolves the webhook's host, when a rule is stored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from keel.errors import InvalidInput

__all__ = [
    "MASK",
    "NOTIFIER_TYPES",
    "check_action",
    "check_notifier",
    "check_outbound",
    "mask",
    "refuse_masked",
]

NOTIFIER_TYPES = ("log", "webhook", "slack", "email")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_URL = 2_000
MAX_TIMEOUT_S = 30.0
DEFAULT_TIMEOUT_S = 5.0
MAX_RECIPIENTS = 50
MAX_PAYLOAD = 20_000  # characters of a trigger's payload as JSON
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")
_EMAIL = re.compile(r"[^@\s<>,;\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}")
# NUL and other control characters: PostgreSQL refuses NUL in text, and none belongs in a
# URL, user name, password or path
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"[A-Za-z0-9.:\[\]-]{1,253}")
_SECRET_KEYS = ("url", "password", "headers", "username")
# What a secret reads as to whoever may not see it (``mask``); a write carrying it back is
# refused (``refuse_masked``), so a masked copy can never overwrite the real secret.
MASK = "***"

_FIELDS: dict[str, set[str]] = {
    "log": {"level"},
    "webhook": {"url", "url_env", "headers", "timeout"},
    "slack": {"url", "url_env", "timeout"},
    "email": {
        "host",
        "port",
        "from",
        "to",
        "starttls",
        "ssl",
        "username",
        "password",
        "password_env",
        "ca_file",
        "timeout",
    },
}


def _typed(spec: object, where: str) -> dict[str, Any]:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{where} is a type name or a mapping with a 'type', not {spec!r:.80}")
    kind = spec.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidInput(f"{where} needs a 'type', got {dict(spec)!r:.80}")
    return {str(k): v for k, v in spec.items()}


def _unknown(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(spec) - allowed - {"type"})
    if extra:
        raise InvalidInput(
            f"{where} ({spec['type']}): unknown field(s) {', '.join(extra)[:200]}; "
            f"known: {', '.join(sorted(allowed)) or 'none'}"
        )


def _timeout(spec: dict[str, Any], where: str) -> None:
    value = spec.get("timeout", DEFAULT_TIMEOUT_S)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{where}: timeout is a number of seconds, not {value!r:.40}")
    if not 0.1 <= value <= MAX_TIMEOUT_S:
        raise InvalidInput(f"{where}: timeout must be 0.1 to {MAX_TIMEOUT_S:g} s, not {value}")
    spec["timeout"] = float(value)


def _url(spec: dict[str, Any], where: str) -> None:
    url, env = spec.get("url"), spec.get("url_env")
    if (url is None) == (env is None):
        raise InvalidInput(f"{where} ({spec['type']}): give exactly one of url and url_env")
    if env is not None:
        if not isinstance(env, str) or not _ENV.fullmatch(env):
            raise InvalidInput(f"{where}: url_env is an environment variable name, not {env!r:.80}")
        return
    if (
        not isinstance(url, str)
        or len(url) > MAX_URL
        or not re.match(r"https?://[^\s/]+", url)
        or any(c.isspace() for c in url)
        or _CONTROL.search(url)
    ):
        raise InvalidInput(
            f"{where}: url must be an http(s):// URL of at most {MAX_URL} characters"
        )


def _headers(spec: dict[str, Any], where: str) -> None:
    headers = spec.get("headers")
    if headers is None:
        return
    if not isinstance(headers, Mapping) or len(headers) > 20:
        raise InvalidInput(f"{where}: headers map at most 20 names to values")
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER.fullmatch(name):
            raise InvalidInput(f"{where}: header name {name!r:.80} is not a valid header name")
        if not isinstance(value, str) or len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise InvalidInput(f"{where}: header {name} needs a one-line text value")
    spec["headers"] = dict(headers)


def _email(spec: dict[str, Any], where: str) -> None:
    host = spec.get("host")
    if not isinstance(host, str) or not _HOST.fullmatch(host):
        raise InvalidInput(f"{where} (email): host is an SMTP server's name, not {host!r:.80}")
    port = spec.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"{where} (email): port is 1 to 65535, not {port!r:.40}")
    spec["port"] = port
    sender = spec.get("from")
    if not isinstance(sender, str) or not _EMAIL.fullmatch(sender):
        raise InvalidInput(f"{where} (email): from is an e-mail address, not {sender!r:.80}")
    to = spec.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not 1 <= len(to) <= MAX_RECIPIENTS:
        raise InvalidInput(f"{where} (email): to is 1 to {MAX_RECIPIENTS} e-mail addresses")
    for address in to:
        if not isinstance(address, str) or not _EMAIL.fullmatch(address):
            raise InvalidInput(f"{where} (email): {address!r:.80} is not an e-mail address")
    spec["to"] = list(to)
    for flag in ("starttls", "ssl"):
        value = spec.get(flag, False)
        if not isinstance(value, bool):
            raise InvalidInput(f"{where} (email): {flag} is true or false, not {value!r:.40}")
        spec[flag] = value
    if spec["starttls"] and spec["ssl"]:
        raise InvalidInput(f"{where} (email): choose starttls or ssl, not both")
    for key in ("username", "password"):
        value = spec.get(key)
        if value is not None and (
            not isinstance(value, str) or len(value) > 1024 or _CONTROL.search(value)
        ):
            raise InvalidInput(
                f"{where} (email): {key} is text of at most 1024 characters, without "
                "control characters"
            )
    ca_file = spec.get("ca_file")
    if ca_file is not None and (
        not isinstance(ca_file, str) or not 0 < len(ca_file) <= 4096 or _CONTROL.search(ca_file)
    ):
        raise InvalidInput(f"{where} (email): ca_file is the path of a PEM file of CA certificates")
    env = spec.get("password_env")
    if env is not None and (not isinstance(env, str) or not _ENV.fullmatch(env)):
        raise InvalidInput(f"{where} (email): password_env is a variable name, not {env!r:.80}")
    if spec.get("password") is not None and env is not None:
        raise InvalidInput(f"{where} (email): give password or password_env, not both")


def check_notifier(spec: object, where: str = "notifier") -> dict[str, Any]:
    """Return a notifier's configuration, normalised; ``InvalidInput`` naming the field."""
    out = _typed(spec, where)
    kind = out["type"]
    if kind not in NOTIFIER_TYPES:
        raise InvalidInput(
            f"{where}: unknown notifier type {kind!r:.40}; use one of {', '.join(NOTIFIER_TYPES)}"
        )
    _unknown(out, _FIELDS[kind], where)
    if kind == "log":
        level = out.get("level", "warning")
        if level not in LOG_LEVELS:
            raise InvalidInput(f"{where} (log): level is one of {', '.join(LOG_LEVELS)}")
        out["level"] = level
        return out
    _timeout(out, where)
    if kind == "email":
        _email(out, where)
    else:
        _url(out, where)
        _headers(out, where)
    return out


def check_action(spec: object, where: str = "action") -> dict[str, Any]:
    """Return an action's configuration, normalised; ``InvalidInput`` naming the field."""
    import orjson

    from keel.monitoring.alerts.actions import action_names

    out = _typed(spec, where)
    kind = out["type"]
    names = action_names()
    if kind not in names:
        raise InvalidInput(f"{where}: unknown action {kind!r:.40}; use one of {', '.join(names)}")
    if kind in ("rollback", "abort_canary", "pause_canary"):
        _unknown(out, {"deployment"} if kind != "rollback" else {"deployment", "to"}, where)
        for key in ("deployment", "to"):
            if out.get(key) is not None and (not isinstance(out[key], str) or len(out[key]) > 300):
                raise InvalidInput(f"{where} ({kind}): {key} is a name, not {out[key]!r:.80}")
    elif kind == "webhook":
        _unknown(out, _FIELDS["webhook"], where)
        _timeout(out, where)
        _url(out, where)
        _headers(out, where)
    elif kind == "trigger":
        _unknown(out, {"payload"}, where)
        payload = out.get("payload", {})
        if not isinstance(payload, Mapping):
            raise InvalidInput(f"{where} (trigger): payload is a mapping, not {payload!r:.80}")
        try:
            # orjson refuses integers past 64 bits, json refuses NaN and ±inf: both are
            # written later (audit log, events), so the payload must suit both
            size = len(orjson.dumps(payload))
            json.dumps(payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{where} (trigger): payload is not plain JSON: {exc}") from None
        if size > MAX_PAYLOAD:
            raise InvalidInput(f"{where} (trigger): payload is at most {MAX_PAYLOAD} bytes")
        out["payload"] = dict(payload)
    return out


def check_outbound(spec: Mapping[str, Any], where: str) -> None:
    """Refuse (``InvalidInput``) a webhook or Slack URL the server may not call: one whose
    host resolves to a loopback, link-local or private address that the outbound
    allow-list does not name (``keel.governance.outbound``). It resolves the host, so it
    runs when a rule is stored, not each time one is read; a URL read from ``url_env`` is
    checked before each request only (the variable is read then)."""
    from keel.governance.outbound import check_outbound_url

    url = spec.get("url")
    if spec.get("type") in ("webhook", "slack") and isinstance(url, str):
        check_outbound_url(url, what=f"{where} ({spec['type']})")


def mask(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Return a configuration with its URL past the host (``https://hooks.slack.com/***``),
    header values, user name and password replaced by ``MASK``; ``url_env`` and
    ``password_env`` name variables, not secrets, and stay."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "url" and isinstance(value, str):
            # the scheme and host only: not a user:password@ before the host either
            match = re.match(r"(https?://)(?:[^/?#]*@)?([^/?#@]+)", value)
            out[key] = (match.group(1) + match.group(2) if match else "") + "/" + MASK
        elif key == "headers" and isinstance(value, Mapping):
            out[key] = {str(name): MASK for name in value}
        elif key in _SECRET_KEYS and value is not None:
            out[key] = MASK
        else:
            out[key] = value
    return out


def refuse_masked(spec: Mapping[str, Any], where: str) -> None:
    """Raise ``InvalidInput`` if ``spec`` carries a value ``mask`` wrote: storing it would
    replace the real secret with the mask."""
    url = spec.get("url")
    headers = spec.get("headers")
    masked = [
        key
        for key, hit in (
            ("url", isinstance(url, str) and url.endswith("/" + MASK)),
            ("headers", isinstance(headers, Mapping) and MASK in headers.values()),
            ("username", spec.get("username") == MASK),
            ("password", spec.get("password") == MASK),
        )
        if hit
    ]
    if masked:
        raise InvalidInput(
            f"{where} ({spec.get('type')}): {', '.join(masked)} is the masked value "
            f"{MASK!r} (a rule read without the right to see its secrets); give the real "
            "value, or url_env / password_env"
        )
