"""``keel server``: the REST API (and, as it grows, the UI) on uvicorn."""

from __future__ import annotations

import ipaddress
import os
from typing import Annotated

import typer

from keel.errors import InvalidInput

__all__ = ["is_loopback", "server"]


def is_loopback(host: str) -> bool:
    """Return whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _announce_auth() -> None:
    from keel.governance.auth import auth_store
    from keel.stores import current_stores

    typer.echo("auth: on (every route but /health needs 'Authorization: Bearer <token>')")
    if not auth_store(current_stores()).list_users():
        typer.echo(
            "no users yet; create the first admin and their token against this same home:\n"
            "  keel auth user add admin --role admin\n"
            "  keel auth token create --user admin"
        )


def server(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless told otherwise.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8750,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    insecure: Annotated[
        bool,
        typer.Option(help="Allow binding a non-loopback address without authentication."),
    ] = False,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Demand an API token and a role on every route but /health "
            "(default: the auth setting, KEEL_AUTH; off).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the Keel server: REST API under /api/v1, docs at /docs, /health and /metrics."""
    import uvicorn

    from keel.config import get_settings, reset_settings
    from keel.store.database import mask_url

    auth_on = get_settings().auth if auth is None else auth
    if not is_loopback(host) and not auth_on and not insecure:
        raise InvalidInput(
            f"binding {host} would expose an unauthenticated server to the network; "
            "pass --auth (API tokens and roles), bind 127.0.0.1, or pass --insecure if you "
            "really mean it"
        )
    if not is_loopback(host) and not auth_on:
        typer.secho(
            f"warning: serving {host}:{port} WITHOUT authentication (--insecure)",
            err=True,
            fg="red",
        )
    # The app factory reads its settings in each worker process: hand the choice down.
    os.environ["KEEL_AUTH"] = "true" if auth_on else "false"
    reset_settings()
    settings = get_settings()
    typer.echo(f"Keel server on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    typer.echo(f"metadata: {mask_url(settings.resolved_tracking_uri())}")
    typer.echo(f"artifacts: {settings.resolved_artifact_uri()}")
    if auth_on:
        _announce_auth()
    uvicorn.run(
        "keel.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
