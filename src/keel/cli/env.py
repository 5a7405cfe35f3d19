"""``keel env list | show NAME``: the environments config.toml defines, and their gates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table as Grid

from keel.cli._output import JsonOption, Table, out_console, plain, print_json

if TYPE_CHECKING:
    from keel.environments import Environment

__all__ = ["app"]

app = typer.Typer(
    # \[ : Typer reads help as rich markup, where [environments.<name>] is a tag
    help="Environments (\\[environments.<name>] in .keel/config.toml) and their gates.",
    no_args_is_help=True,
)


def _gates(env: Environment) -> str:
    parts = [str(m) for m in env.gates.metrics]
    champion = env.gates.compare_champion
    if champion is not None:
        direction = "max" if champion.maximize else "min"
        parts.append(f"beats champion by {champion.metric} ({direction}) on {champion.data}")
    approvals = env.gates.approvals
    if approvals is not None and approvals.count:
        parts.append(f"{approvals.count} approval(s) by {approvals.role}")
    return "; ".join(parts) or "none"


def _deployment(env: Environment) -> str:
    spec = env.deployment
    if spec is None or spec.strategy == "none":
        return "none"
    options = ", ".join(f"{k}={v}" for k, v in spec.options.items())
    return f"{spec.name} by {spec.strategy}" + (f" ({options})" if options else "")


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List the environments, their alias, deployment and gates; * marks the current one."""
    from keel.config import get_settings
    from keel.environments import list_environments

    envs = list_environments()
    current = get_settings().env
    if as_json:
        print_json({"current": current or None, "environments": [e.to_dict() for e in envs]})
        return
    console = out_console()
    if not envs:
        console.print(
            plain(
                "no environments yet; add [environments.prod] to .keel/config.toml "
                "(see keel.environments)"
            )
        )
        return
    table = Table()
    for column, kind in (
        ("", "status"), ("name", "id"), ("alias", "id"), ("deployment", "text"), ("gates", "text"),
    ):  # fmt: skip
        table.add_column(column, kind=kind, style="bold" if column == "name" else "")
    for env in envs:
        mark = "*" if env.name == current else ""
        table.add_row(mark, plain(env.name), plain(env.alias), plain(_deployment(env)),
                      plain(_gates(env)))  # fmt: skip
    console.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="The environment, e.g. prod.")],
    as_json: JsonOption = False,
) -> None:
    """Show one environment: its alias, overrides, deployment and every gate."""
    from keel.environments import get_environment

    env = get_environment(name)
    if as_json:
        print_json(env.to_dict())
        return
    table = Grid(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows = [
        ("name", env.name),
        ("description", env.description),
        ("alias", env.alias),
        ("tracking_uri", env.tracking_uri),
        ("artifact_uri", env.artifact_uri),
        ("deployment", _deployment(env)),
    ]
    rows += [("metric gate", str(m)) for m in env.gates.metrics]
    champion = env.gates.compare_champion
    if champion is not None:
        rows.append(
            (
                "champion gate",
                f"{champion.metric} ({'maximize' if champion.maximize else 'minimize'}, "
                f"min improvement {champion.min_improvement:g}) on {champion.data}, "
                f"target {champion.target}",
            )
        )
    approvals = env.gates.approvals
    if approvals is not None:
        rows.append(("approvals", f"{approvals.count} by {approvals.role} or higher"))
    for key, value in rows:
        if value is not None:
            table.add_row(key, plain(value))
    out_console().print(table)
