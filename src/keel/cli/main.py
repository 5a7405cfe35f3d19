"""The ``keel`` command: the root options and every command group, composed.

keel [--debug] [--version] COMMAND
keel init | info | doctor | demo | server | serve
keel db status | upgrade
keel experiments list
keel runs list | show | compare | gc
keel models list | show | versions | alias | card
keel audit log | verify
keel auth user add | list; token create | list | revoke; role grant | revoke
keel predict batch
keel deploy create | list | show | history | rollout | traffic | promote | rollback | abort |
            outcome | analysis | delete | render
keel export onnx
keel bundle
keel monitor drift | profile
keel pipeline run | resume | list | runs | show | schedule | schedules | unschedule | pause |
              unpause | dispatches | trigger add | list | delete
keel hpo studies | show
keel env list | show; keel promote MODEL --to ENV | approve | history
"""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli import alerts as alerts_cli
from keel.cli import audit, auth, db, demo, doctor, experiments, home, models, runs, server
from keel.cli import deploy as deploy_cli
from keel.cli import env as env_cli
from keel.cli import export as export_cli
from keel.cli import hpo as hpo_cli
from keel.cli import monitor as monitor_cli
from keel.cli import pipeline as pipeline_cli
from keel.cli import predict as predict_cli
from keel.cli import promote as promote_cli
from keel.cli._group import KeelGroup
from keel.cli.bundle import bundle
from keel.cli.lineage import lineage
from keel.cli.serve import serve

__all__ = ["app", "main"]

app = typer.Typer(
    name="keel",
    cls=KeelGroup,
    help="Keel: the machine-learning lifecycle in one package.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from keel import __version__

        typer.echo(f"keel {__version__}")
        raise typer.Exit


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="KEEL_DEBUG", help="Show the full traceback when a command fails."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print Keel's version."
        ),
    ] = False,
    env: Annotated[
        str | None, typer.Option("--env", help="The current environment (default: KEEL_ENV).")
    ] = None,
) -> None:
    """Keel: track, register, deploy and monitor models. Errors are one line; --json for scripts."""
    if env is not None:  # keel.environments: its tracking/artifact URI overrides apply
        from keel.environments import select_environment

        select_environment(env)


app.command("init")(home.init)
app.command("info")(home.info)
app.command("doctor")(doctor.doctor)
app.command("demo")(demo.demo)
app.command("server")(server.server)
app.command("serve")(serve)
app.add_typer(db.app, name="db")
app.add_typer(experiments.app, name="experiments")
app.add_typer(runs.app, name="runs")
app.add_typer(models.app, name="models")
app.add_typer(audit.app, name="audit")
app.add_typer(auth.app, name="auth")
app.add_typer(predict_cli.app, name="predict")
app.add_typer(deploy_cli.app, name="deploy")
app.add_typer(export_cli.app, name="export")
app.add_typer(monitor_cli.app, name="monitor")
app.add_typer(alerts_cli.app, name="alerts")
app.add_typer(pipeline_cli.app, name="pipeline")
app.add_typer(hpo_cli.app, name="hpo")
app.add_typer(env_cli.app, name="env")
app.add_typer(promote_cli.app, name="promote")
app.command("bundle")(bundle)
app.command("lineage")(lineage)


def main() -> None:
    """Run the ``keel`` console script."""
    app()
