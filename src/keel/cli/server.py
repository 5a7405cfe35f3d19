"""``keel server``: the REST API (and, as it grows, the UI) on uvicorn."""

from __future__ import annotations

import ipaddress
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
) -> None:
    """Run the Keel server: REST API under /api/v1, docs at /docs, /health and /metrics."""
    import uvicorn

    from keel.config import get_settings
    from keel.store.database import mask_url

    if not is_loopback(host) and not insecure:
        raise InvalidInput(
            f"binding {host} would expose an unauthenticated server to the network; "
            "bind 127.0.0.1, or pass --insecure if you really mean it"
        )
    if not is_loopback(host):
        typer.secho(
            f"warning: serving {host}:{port} WITHOUT authentication (--insecure)",
            err=True,
            fg="red",
        )
    settings = get_settings()
    typer.echo(f"Keel server on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    typer.echo(f"metadata: {mask_url(settings.resolved_tracking_uri())}")
    typer.echo(f"artifacts: {settings.resolved_artifact_uri()}")
    uvicorn.run(
        "keel.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
