"""Notifiers: where an alert is told — a JSON webhook, a Slack-compatible webhook, e-mail
over SMTP, or the log.

Every notifier gets the same :class:`Notice` and sends it with a bounded timeout (the
notifier's ``timeout``, default 5 s, at most 30 s). A failure raises a ``KeelError`` whose
message masks the URL past its host and never carries a password or header value.

The JSON webhook POSTs (``Content-Type: application/json``)::

    {"source": "keel", "event": "firing" | "repeat" | "resolved",
     "alert_id": "…", "rule": "churn-drift", "deployment": "churn-prod",
     "metric": "drift_share", "op": ">", "threshold": 0.3, "window": "1h",
     "value": 0.42, "severity": "critical", "state": "firing",
     "started_at": 1764…, "fired_at": 1764…, "resolved_at": null,
     "acknowledged_by": null, "description": "…", "summary": "[critical] FIRING …"}

The Slack-compatible webhook POSTs ``{"text": summary, "blocks": [a mrkdwn section]}``
(Slack, Mattermost, Rocket.Chat incoming webhooks). E-mail sends a plain-text message whose
subject is the summary. The log writes the summary to the ``keel.alerts`` logger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.errors import InvalidInput, KeelError
from keel.governance.outbound import resolve_outbound, stream_outbound
from keel.monitoring.alerts.entities import Alert
from keel.monitoring.alerts.rules import AlertRule
from keel.monitoring.alerts.specs import DEFAULT_TIMEOUT_S, mask

__all__ = ["Notice", "notify", "send_email", "send_webhook"]

_log = logging.getLogger("keel.alerts")


@dataclass(frozen=True)
class Notice:
    """What a notifier says: the event ("firing", "repeat", "resolved"), rule and alert."""

    event: str
    rule: AlertRule
    alert: Alert

    @property
    def summary(self) -> str:
        """One line: severity, event, rule, deployment and the figure against its bound."""
        a, r = self.alert, self.rule
        value = "no data" if a.value is None else f"{a.value:g}"
        return (
            f"[{r.severity}] {self.event.upper()} {r.name} on {r.deployment}: "
            f"{r.metric} = {value} ({r.op} {r.threshold:g} over {r.window})"
        )

    def body(self) -> dict[str, Any]:
        """Return the JSON webhook's body (see the module doc)."""
        a, r = self.alert, self.rule
        return {
            "source": "keel",
            "event": self.event,
            "alert_id": a.alert_id,
            "rule": r.name,
            "deployment": r.deployment,
            "metric": r.metric,
            "op": r.op,
            "threshold": r.threshold,
            "window": r.window,
            "value": a.value,
            "severity": r.severity,
            "state": a.state.value,
            "started_at": a.started_at,
            "fired_at": a.fired_at,
            "resolved_at": a.resolved_at,
            "acknowledged_by": a.acknowledged_by,
            "description": r.description,
            "summary": self.summary,
        }


def _url(spec: Mapping[str, Any]) -> str:
    url = spec.get("url")
    if url is None:
        name = str(spec["url_env"])
        url = os.environ.get(name)
        if not url:
            raise InvalidInput(f"{spec['type']} notifier: environment variable {name} is not set")
    return str(url)


def send_webhook(spec: Mapping[str, Any], body: Mapping[str, Any]) -> int:
    """POST ``body`` as JSON to the URL ``spec`` names; return the HTTP status (2xx).

    The URL is checked against the outbound policy right before the request, and the
    request goes to the addresses that check resolved (``keel.governance.outbound``):
    ``InvalidInput`` if the policy refuses it. ``KeelError`` (URL masked) if it is
    unreachable, slow past its timeout, or answers anything but 2xx — a redirect too,
    which is not followed.
    """
    import httpx
    import orjson

    url = _url(spec)
    shown = mask({"url": url})["url"]
    headers = {**dict(spec.get("headers") or {}), "Content-Type": "application/json"}
    headers.setdefault("User-Agent", "keel-alerts")
    timeout = float(spec.get("timeout", DEFAULT_TIMEOUT_S))
    target = resolve_outbound(url, what=f"{spec.get('type', 'webhook')} URL", timeout=timeout)
    try:
        # streamed and never read: only the status matters, however big the answer is
        with stream_outbound(
            "POST", target, content=orjson.dumps(dict(body)), headers=headers, timeout=timeout
        ) as response:
            status = response.status_code
    except httpx.TimeoutException:
        raise KeelError(f"webhook {shown} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        reason = type(exc).__name__
        raise KeelError(f"webhook {shown} is unreachable ({reason})") from None
    if 300 <= status < 400:
        raise KeelError(
            f"webhook {shown} answered HTTP {status}, a redirect, which Keel does not follow "
            "(each hop would need the outbound check): give the final URL"
        )
    if not 200 <= status < 300:
        raise KeelError(f"webhook {shown} answered HTTP {status}")
    return status


def _slack_body(notice: Notice) -> dict[str, Any]:
    a, r = notice.alert, notice.rule
    lines = [f"*{notice.summary}*", f"alert `{a.alert_id}`"]
    if r.description:
        lines.append(r.description)
    if a.acknowledged_by:
        lines.append(f"acknowledged by {a.acknowledged_by}")
    return {
        "text": notice.summary,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}],
    }


def _password(spec: Mapping[str, Any]) -> str | None:
    if spec.get("password_env"):
        name = str(spec["password_env"])
        value = os.environ.get(name)
        if value is None:
            raise InvalidInput(f"email notifier: environment variable {name} is not set")
        return value
    return spec.get("password")


def send_email(spec: Mapping[str, Any], subject: str, text: str) -> None:
    """Send a plain-text e-mail through the SMTP server ``spec`` names (host, port, from,
    to, starttls or ssl with ca_file, username and password); ``KeelError`` if it fails,
    e.g. when the server's certificate does not verify."""
    import smtplib
    import ssl
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = str(spec["from"])
    message["To"] = ", ".join(spec["to"])
    message["Subject"] = subject.replace("\r", " ").replace("\n", " ")[:250]
    message.set_content(text)
    host, port = str(spec["host"]), int(spec.get("port", 25))
    timeout = float(spec.get("timeout", DEFAULT_TIMEOUT_S))
    where = f"SMTP server {host}:{port}"
    try:
        # the server's certificate is always verified (system CAs, plus ca_file if given)
        context = ssl.create_default_context(cafile=spec.get("ca_file"))
        if spec.get("ssl"):
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
        with smtp:
            if spec.get("starttls"):
                smtp.starttls(context=context)
            if spec.get("username"):
                smtp.login(str(spec["username"]), _password(spec) or "")
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise KeelError(f"{where} refused the login of the email notifier") from None
    except (smtplib.SMTPException, OSError) as exc:
        # smtplib messages carry server replies, never the password
        raise KeelError(f"{where} failed: {type(exc).__name__}: {str(exc)[:200]}") from None


def _email_text(notice: Notice) -> str:
    body = notice.body()
    lines = [notice.summary, ""]
    lines += [f"{key}: {value}" for key, value in body.items() if key not in ("summary", "source")]
    return "\n".join(lines) + "\n"


def notify(spec: Mapping[str, Any], notice: Notice) -> dict[str, Any]:
    """Send ``notice`` through one notifier; return what it reported (for the event)."""
    kind = spec.get("type")
    if kind == "log":
        level = logging.getLevelName(str(spec.get("level", "warning")).upper())
        _log.log(level, "%s (alert %s)", notice.summary, notice.alert.alert_id)
        return {"notifier": "log"}
    if kind == "webhook":
        status = send_webhook(spec, notice.body())
        return {"notifier": "webhook", "url": mask(spec).get("url"), "status": status}
    if kind == "slack":
        status = send_webhook(spec, _slack_body(notice))
        return {"notifier": "slack", "url": mask(spec).get("url"), "status": status}
    if kind == "email":
        send_email(spec, notice.summary, _email_text(notice))
        return {"notifier": "email", "to": list(spec["to"])}
    raise InvalidInput(f"unknown notifier type {kind!r:.40}")
