"""``keel audit log | verify``."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.text import Text

from keel.cli._output import JsonOption, Table, out_console, plain, print_json, timestamp

__all__ = ["app"]

app = typer.Typer(help="The audit log: who changed what, and whether it was tampered with.")

_SUMMARY = 80


def _summary(change: dict[str, Any]) -> str:
    """Return ``change`` as one short line: ``key=value`` pairs, cut at a readable width."""
    parts = []
    for key, value in change.items():
        if value is None or value in ({}, []):
            continue
        shown = value if isinstance(value, str) else orjson.dumps(value).decode()
        parts.append(f"{key}={shown}")
    text = ", ".join(parts) or "—"
    return text if len(text) <= _SUMMARY else text[: _SUMMARY - 1] + "…"


@app.command("log")
def log(
    *,
    object_id: Annotated[
        str | None,
        typer.Option(
            "--object",
            help="An object id: run id, model, model/3, model@alias (a model "
            "also shows its versions and aliases).",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="1h, 30m, 7d, a date (2026-11-25) or an ISO time."),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="e.g. run.create, alias.set; 'run' for every run action."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="Show the latest N entries.", min=1)
    ] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show the latest audit entries, oldest first: time, actor, action, object, change."""
    from keel.governance.audit import audit_log

    entries = audit_log(object=object_id, since=since, action=action, limit=limit)
    if as_json:
        print_json({"entries": [e.to_dict() for e in entries]})
        return
    console = out_console()
    if not entries:
        filtered = object_id or since or action
        console.print("no audit entries match" if filtered else "no audit entries yet")
        return
    table = Table()
    table.add_column("seq", kind="number")
    table.add_column("time", kind="time")
    table.add_column("actor")
    table.add_column("action", kind="status")
    table.add_column("object", kind="id")
    table.add_column("change")
    for e in entries:
        table.add_row(
            str(e.seq),
            timestamp(e.at),
            plain(e.actor),
            plain(e.action),
            plain(e.object_id),
            plain(_summary(e.change), "dim"),
        )
    console.print(table)


@app.command("verify")
def verify(as_json: JsonOption = False) -> None:
    """Re-walk the hash chain; exit 1 naming every edited, deleted or reordered entry."""
    from keel.governance.audit import verify_audit_log

    result = verify_audit_log()
    if as_json:
        print_json(result.to_dict())
    else:
        console = out_console()
        if result.ok:
            console.print(
                Text.assemble(("✓", "bold green"), f" {result.checked} entries, chain intact")
            )
        else:
            for problem in result.problems:
                console.print(
                    Text.assemble(("✗", "bold red"), f" {problem.kind}: {problem.message}"),
                    soft_wrap=True,
                )
            console.print(
                f"{len(result.problems)} problem(s) in {result.checked} entries", soft_wrap=True
            )
    if not result.ok:
        raise typer.Exit(1)
