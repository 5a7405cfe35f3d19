"""``keel db status | upgrade``: the metadata database's schema revision."""

from __future__ import annotations

import typer
from rich.markup import escape

from keel.cli._output import JsonOption, out_console, print_json

__all__ = ["app"]

app = typer.Typer(help="Inspect and upgrade the metadata database's schema.", no_args_is_help=True)


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Show the schema revision of the metadata database and whether it is current."""
    from keel.cli._db import schema_report
    from keel.config import get_settings
    from keel.store.database import mask_url

    settings = get_settings()
    report = schema_report(settings)
    url = mask_url(settings.resolved_tracking_uri())
    if as_json:
        print_json({"tracking_uri": url, **report.to_dict()})
        return
    colour = "green" if report.ok else "red"
    console = out_console()
    console.print(f"metadata store: {escape(url)}")
    console.print(
        f"schema: [{colour}]{report.state.replace('_', ' ')}[/] "
        f"(revision {report.revision or '—'}, this Keel: {report.head})"
    )
    if report.state != "current":
        console.print(f"[{colour}]{escape(report.message)}[/]")


@app.command()
def upgrade(as_json: JsonOption = False) -> None:
    """Upgrade the metadata database to this Keel's schema (a SQLite file is backed up first)."""
    from keel.cli._db import unchecked_database
    from keel.config import get_settings
    from keel.store import migrate
    from keel.store.database import mask_url

    settings = get_settings()
    url = mask_url(settings.resolved_tracking_uri())
    with unchecked_database(settings) as db:
        before, after, backup = migrate.upgrade(db)
    changed = before != after
    if as_json:
        print_json(
            {
                "tracking_uri": url,
                "from_revision": before,
                "to_revision": after,
                "changed": changed,
                "backup": str(backup) if backup else None,
            }
        )
        return
    console = out_console()
    if not changed:
        console.print(f"[green]✓[/] {escape(url)} is already at revision {after}; nothing to do")
        return
    if before is None:
        console.print(f"[green]✓[/] created {escape(url)} at revision {after}")
        return
    console.print(f"[green]✓[/] upgraded {escape(url)}: revision {before} → {after}")
    if backup is not None:
        console.print(f"  backup of the previous database: {escape(str(backup))}")
