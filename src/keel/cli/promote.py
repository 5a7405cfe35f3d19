"""``keel promote MODEL --to ENV [--dry-run] | approve MODEL --to ENV | history``.

Thin over the SDK (``keel.promote``, ``keel.approve_promotion``, ``keel.promotion_history``).
``keel promote`` exits 0 when the version was promoted (or a dry run passed), 1 when a gate
refused it (the gates are printed as a table with their reasons) or its rollout could not
start, and 2 for bad input (an unknown environment, model or version, bad gate config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from keel.cli._output import JsonOption, Table, out_console, plain, print_json, timestamp

if TYPE_CHECKING:
    import click

    from keel.promotion.entities import PromotionResult

__all__ = ["app"]


class _PromoteGroup(TyperGroup):
    """``keel promote MODEL …`` runs the hidden ``run`` command; ``approve`` and
    ``history`` are subcommands (a model URI never collides: it starts with models:/)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_PromoteGroup,
    help=(
        "Promote a model version into an environment through its gates: "
        "keel promote models:/churn/5 --to prod [--dry-run] [--json]. "
        "Exit 0 promoted, 1 refused (each gate's reason shown), 2 bad input."
    ),
    no_args_is_help=True,
)

Model = Annotated[str, typer.Argument(help="The version to promote, e.g. models:/churn/5.")]
To = Annotated[
    str | None,
    typer.Option("--to", help="The environment, e.g. prod (default: KEEL_ENV / --env)."),
]


def _gates_table(result: PromotionResult) -> Table:
    table = Table(title=f"gates of {result.environment}", title_justify="left")
    for column, kind in (("gate", "id"), ("result", "status"), ("reason", "text")):
        table.add_column(column, kind=kind)
    for gate in result.gates:
        verdict = Text("pass", style="green") if gate.passed else Text("FAIL", style="bold red")
        table.add_row(plain(gate.name), verdict, plain(gate.reason))
    return table


def _summary(result: PromotionResult) -> Text:
    moved = "unset" if result.previous_version is None else f"v{result.previous_version}"
    head = f"{result.uri} -> {result.environment}"
    if result.outcome == "promoted":
        line = f"promoted {head}: {result.alias} {moved} -> v{result.version}"
        if result.rollout is not None:
            line += (
                f"; deployment {result.deployment} {result.rollout['action']}: "
                f"{result.rollout['status']}"
            )
        return Text(line, style="green")
    if result.outcome == "dry-run":
        return Text(f"dry run {head}: every gate passed; {result.alias} would move {moved} -> "
                    f"v{result.version}")  # fmt: skip
    failed = len(result.reasons)
    if result.outcome == "refused":
        return Text(f"refused {head}: {failed} gate(s) failed; nothing changed", style="bold red")
    return Text(f"failed {head}: {result.reason}; the alias was put back", style="bold red")


@app.command("run", hidden=True)
def run(
    model: Model,
    to: To = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Evaluate the gates only; move nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Promote MODEL into an environment if every gate passes; else print why not."""
    from keel.promotion.api import promote

    result = promote(model, to=to, dry_run=dry_run)
    if as_json:
        print_json(result.to_dict())
    else:
        console = out_console()
        console.print(_gates_table(result))
        console.print(_summary(result))
    if result.outcome in ("refused", "failed"):
        raise typer.Exit(1)


@app.command("approve")
def approve(
    model: Model,
    to: To = None,
    comment: Annotated[
        str | None, typer.Option("--comment", help="Why (kept with the approval).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Approve MODEL for an environment as the current user (twice counts once)."""
    from keel.promotion.api import approve_promotion

    approval = approve_promotion(model, to=to, comment=comment)
    if as_json:
        print_json(approval.to_dict())
        return
    role = f" ({approval.role})" if approval.role else ""
    out_console().print(
        plain(
            f"{approval.approver}{role} approved models:/{approval.model}/{approval.version} "
            f"for {approval.environment}"
        )
    )


@app.command("history")
def history(
    env: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List promotion attempts, newest first: outcome, alias move, who and why."""
    from keel.promotion.api import promotion_history

    found = promotion_history(env, model=model, limit=limit)
    if as_json:
        print_json({"promotions": [p.to_dict() for p in found]})
        return
    console = out_console()
    if not found:
        console.print("no promotions yet; promote with keel promote models:/NAME/N --to ENV")
        return
    table = Table()
    for column, kind in (
        ("at", "time"), ("version", "id"), ("env", "id"), ("outcome", "status"),
        ("alias", "text"), ("actor", "text"), ("reason", "text"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    styles: dict[str, Any] = {"promoted": "green", "refused": "red", "failed": "bold red"}
    for p in found:
        before = "unset" if p.previous_version is None else f"v{p.previous_version}"
        moved = f"{before} -> v{p.version}" if p.promoted else f"{before} (kept)"
        table.add_row(
            timestamp(p.at),
            plain(f"{p.model}/{p.version}"),
            plain(p.environment),
            plain(p.outcome, styles.get(p.outcome, "")),
            plain(f"{p.alias}: {moved}"),
            plain(p.actor),
            plain(p.reason),
        )
    console.print(table)
