"""``keel experiments list``."""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli._output import JsonOption, Table, out_console, plain, print_json, timestamp

__all__ = ["app"]

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


@app.command("list")
def list_(
    include_deleted: Annotated[
        bool, typer.Option("--all", help="Include deleted experiments.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List experiments, oldest first."""
    import keel

    experiments = keel.list_experiments(include_deleted=include_deleted)
    if as_json:
        print_json({"experiments": [e.to_dict() for e in experiments]})
        return
    console = out_console()
    if not experiments:
        console.print("no experiments yet; start a run with keel.start_run(experiment=...)")
        return
    table = Table()
    table.add_column("name", kind="id", style="bold")
    table.add_column("id", kind="id")
    table.add_column("stage", kind="status")
    table.add_column("created", kind="time")
    table.add_column("description")
    for e in experiments:
        table.add_row(
            plain(e.name), e.experiment_id, e.lifecycle_stage, timestamp(e.created_at),
            plain(e.description or ""),
        )  # fmt: skip
    console.print(table)
