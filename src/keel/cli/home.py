"""``keel init`` and ``keel info``: create a project's Keel home, and show what is in use."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from keel.cli._output import JsonOption, out_console, print_json

__all__ = ["describe_home", "info", "init"]

_LIBRARIES = ("sqlalchemy", "alembic", "pydantic", "typer", "rich")


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Project folder to create .keel/ in (default: the current one)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a project-local Keel home (.keel/) that commands below it find."""
    from keel.config import CONFIG_FILE, HOME_DIRNAME, init_home

    base = (directory or Path.cwd()).resolve()
    existed = (base / HOME_DIRNAME).is_dir()
    home = init_home(base)
    env_home = os.environ.get("KEEL_HOME")
    shadowed = bool(env_home) and Path(env_home).expanduser().resolve() != home
    if as_json:
        print_json(
            {
                "home": str(home),
                "created": not existed,
                "config_file": str(home / CONFIG_FILE),
                "shadowed_by_keel_home": env_home if shadowed else None,
            }
        )
        return
    console = out_console()
    verb = "Found existing" if existed else "Created"
    console.print(f"[green]✓[/] {verb} Keel home [bold]{escape(str(home))}[/]")
    console.print(f"  settings: {escape(str(home / CONFIG_FILE))}")
    if shadowed:
        console.print(
            f"[yellow]![/] KEEL_HOME is set to {escape(str(env_home))}; unset it to use this home."
        )
    console.print("\nNext steps:")
    console.print("  keel info                  show the home, stores and versions in use")
    console.print("  keel.start_run(...)        log params, metrics and models from Python")
    console.print("  keel runs list             see what you logged")
    console.print("  keel doctor                check the stores are healthy")


def describe_home() -> tuple[Path, str]:
    """Return the home in use and how it was found, in words."""
    from keel.config import HOME_DIRNAME, find_home

    home = find_home()
    if os.environ.get("KEEL_HOME"):
        return home, "KEEL_HOME environment variable"
    cwd = Path.cwd().resolve()
    if any((folder / HOME_DIRNAME).is_dir() for folder in (cwd, *cwd.parents)):
        return home, f"nearest {HOME_DIRNAME}/ above {cwd}"
    return home, f"fallback ~/{HOME_DIRNAME} (no {HOME_DIRNAME}/ found above {cwd})"


def _versions() -> dict[str, str]:
    from keel import __version__

    found = {"keel": __version__, "python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _collect() -> dict[str, Any]:
    from keel.cli._db import schema_report
    from keel.config import CONFIG_FILE, get_settings
    from keel.store.database import mask_url

    home, source = describe_home()
    settings = get_settings()
    config = settings.home / CONFIG_FILE
    return {
        "versions": _versions(),
        "python_executable": sys.executable,
        "home": str(settings.home),
        "home_source": source,
        "home_exists": home.is_dir(),
        "config_file": str(config),
        "config_file_exists": config.is_file(),
        "tracking_uri": mask_url(settings.resolved_tracking_uri()),
        "artifact_uri": mask_url(settings.resolved_artifact_uri()),
        "schema": schema_report(settings).to_dict(),
    }


def info(as_json: JsonOption = False) -> None:
    """Show which Keel home, stores, schema and versions are in use."""
    data = _collect()
    if as_json:
        print_json(data)
        return
    schema = data["schema"]
    colour = {"current": "green", "not_created": "green", "empty": "green"}.get(
        schema["state"], "red"
    )
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    versions = data["versions"]
    table.add_row("keel", f"{versions['keel']} (python {versions['python']})")
    table.add_row("home", f"{escape(data['home'])}  [dim]({escape(data['home_source'])})[/]")
    exists = "" if data["config_file_exists"] else "  [dim](not created)[/]"
    table.add_row("config", f"{escape(data['config_file'])}{exists}")
    table.add_row("tracking", escape(data["tracking_uri"]))
    table.add_row("artifacts", escape(data["artifact_uri"]))
    revision = schema["revision"] or "—"
    table.add_row(
        "schema",
        f"[{colour}]{schema['state'].replace('_', ' ')}[/] "
        f"(revision {revision}, this Keel: {schema['head']})",
    )
    if schema["state"] != "current":
        table.add_row("", f"[{colour}]{escape(schema['message'])}[/]")
    libs = ", ".join(f"{k} {v}" for k, v in versions.items() if k not in ("keel", "python"))
    table.add_row("libraries", escape(libs))
    out_console().print(table)
