"""``keel models list | show | versions | alias | card``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markdown import Markdown
from rich.text import Text

from keel.cli._output import (
    JsonOption,
    Table,
    number,
    out_console,
    plain,
    print_json,
    short_id,
    timestamp,
)
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.registry.entities import AliasChange, ModelVersion

__all__ = ["app"]

app = typer.Typer(
    help="The model registry: models, versions, aliases, cards.", no_args_is_help=True
)

_LATEST = 5
_METRICS_SHOWN = 3

Name = Annotated[str, typer.Argument(help="Registered model name.")]


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}→{v}" for a, v in sorted(aliases.items())) or "—"


def _versions_table(versions: Sequence[ModelVersion], title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("version", kind="number")
    table.add_column("aliases")
    table.add_column("status", kind="status")
    table.add_column("flavor", kind="status")
    table.add_column("run", kind="id")
    table.add_column("created", kind="time")
    table.add_column("by")
    table.add_column("metrics")
    for v in versions:
        metrics = ", ".join(
            f"{k}={number(v.metrics[k])}" for k in sorted(v.metrics)[:_METRICS_SHOWN]
        )
        if len(v.metrics) > _METRICS_SHOWN:
            metrics += ", …"
        table.add_row(
            str(v.version), plain(", ".join(v.aliases) or "—", "bold cyan"), plain(v.status),
            plain(v.flavor), short_id(v.run_id), timestamp(v.created_at), plain(v.created_by),
            plain(metrics or "—"),
        )  # fmt: skip
    return table


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List registered models with their latest version and aliases."""
    import keel

    models = keel.list_registered_models()
    if as_json:
        print_json({"models": [m.to_dict() for m in models]})
        return
    console = out_console()
    if not models:
        console.print(
            'no registered models yet; register one with keel.register_model(uri, "name")'
        )
        return
    table = Table()
    table.add_column("name", kind="id", style="bold")
    table.add_column("latest", kind="number")
    table.add_column("aliases")
    table.add_column("updated", kind="time")
    table.add_column("description")
    for m in models:
        table.add_row(
            plain(m.name), str(m.latest_version), plain(_aliases(m.aliases)),
            timestamp(m.updated_at), plain(m.description or ""),
        )  # fmt: skip
    console.print(table)


@app.command()
def show(name: Name, as_json: JsonOption = False) -> None:
    """Show a registered model, its aliases and its latest versions."""
    import keel

    model = keel.get_registered_model(name)
    latest = keel.list_model_versions(model.name)[:_LATEST]
    if as_json:
        print_json({"model": model.to_dict(), "latest_versions": [v.to_dict() for v in latest]})
        return
    console = out_console()
    head = Table(show_header=False, box=None)
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("model", plain(model.name))
    head.add_row("description", plain(model.description or "—"))
    head.add_row("latest version", str(model.latest_version))
    head.add_row("aliases", plain(_aliases(model.aliases), "bold cyan"))
    head.add_row("created", timestamp(model.created_at))
    head.add_row("updated", timestamp(model.updated_at))
    for key, value in sorted(model.tags.items()):
        head.add_row(plain(f"tag {key}"), plain(value))
    console.print(head)
    if latest:
        console.print(_versions_table(latest, "latest versions"))


@app.command()
def versions(name: Name, as_json: JsonOption = False) -> None:
    """List every version of a registered model, newest first."""
    import keel

    found = keel.list_model_versions(name)
    if as_json:
        print_json({"versions": [v.to_dict() for v in found]})
        return
    if not found:
        out_console().print(f"model {name!r} has no versions yet")
        return
    out_console().print(_versions_table(found))


def _change(change: AliasChange) -> str:
    before = "—" if change.previous_version is None else str(change.previous_version)
    after = "(removed)" if change.version is None else str(change.version)
    return f"{change.alias}: {before} → {after}"


def _history(name: str, alias: str | None, as_json: bool) -> None:
    import keel

    history = keel.get_alias_history(name, alias)
    if as_json:
        print_json({"history": [c.to_dict() for c in history]})
        return
    if not history:
        out_console().print("no alias changes yet")
        return
    table = Table()
    table.add_column("when", kind="time")
    table.add_column("change")
    table.add_column("by")
    for c in history:
        table.add_row(timestamp(c.changed_at), plain(_change(c)), plain(c.changed_by))
    out_console().print(table)


@app.command()
def alias(
    name: Name,
    alias_name: Annotated[
        str | None, typer.Argument(metavar="ALIAS", help="Alias, e.g. champion.")
    ] = None,
    version: Annotated[
        str | None, typer.Argument(help="Version the alias should point at.")
    ] = None,
    *,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    history: Annotated[
        bool, typer.Option("--history", help="Show how aliases moved (ALIAS optional).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Point ALIAS at VERSION, remove it (--delete), or show alias history (--history)."""
    import keel

    if history:
        if version is not None or delete:
            raise InvalidInput("--history takes a model name and an optional alias, nothing else")
        _history(name, alias_name, as_json)
        return
    if alias_name is None:
        raise InvalidInput("give an ALIAS (and a VERSION to set it), or --history")
    if delete:
        if version is not None:
            raise InvalidInput("--delete takes no VERSION")
        change = keel.delete_alias(name, alias_name)
    else:
        if version is None:
            raise InvalidInput(f"give the VERSION {alias_name!r} should point at, or --delete")
        change = keel.set_alias(name, alias_name, version)
    if as_json:
        print_json(change.to_dict())
        return
    out_console().print(Text(_change(change)))


@app.command()
def card(
    name: Name,
    version: Annotated[str, typer.Argument(help="Version number.")],
    intended_use: Annotated[
        str | None,
        typer.Option("--intended-use", help="Write the card's intended-use section first."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show a version's model card (markdown); --intended-use rewrites that section."""
    import keel

    if intended_use is not None:
        text = keel.set_model_card(name, version, intended_use=intended_use)
    else:
        text = keel.get_model_card(name, version)
    if as_json:
        print_json({"name": name, "version": int(version), "card": text})
        return
    out_console().print(Markdown(text))
