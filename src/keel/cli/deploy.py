"""``keel deploy create | list | show | history | rollout | traffic | promote | rollback |
reload | abort | outcome | analysis | delete | render``.

Thin over the SDK (``keel.create_deployment`` …): each command names a deployment, prints
a table or one line for people and one JSON document with ``--json``. Against a Keel
server (``KEEL_TRACKING_URI=http://…``) a change is applied to the versions the server
serves before the command returns; against the database, the controller of a
``keel server`` on it applies it on its next tick.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from keel.cli._output import (
    JsonOption,
    Table,
    number,
    out_console,
    plain,
    print_json,
    timestamp,
)
from keel.cli.deploy_render import render
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.deploy.entities import Deployment

__all__ = ["app"]

app = typer.Typer(
    help="Deployments: named endpoints, rollouts (blue-green, canary, A/B, shadow), rollback.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The deployment, e.g. churn-prod.")]
Model = Annotated[
    str, typer.Argument(help="A model version: models:/churn/3, models:/churn@champion.")
]
To = Annotated[str | None, typer.Option("--to", help="The version to go to, e.g. models:/churn/2.")]
MAX_CONFIG = 100_000


def _split(dep: Deployment) -> str:
    parts = [f"{b.key} {b.weight:g}% ({b.role.value})" for b in dep.plan.backends]
    if dep.plan.shadow is not None:
        parts.append(f"{dep.plan.shadow.key} (shadow)")
    return ", ".join(parts)


def _report(dep: Deployment, as_json: bool) -> None:
    if as_json:
        print_json(dep.to_dict())
        return
    line = f"{dep.name} revision {dep.revision}: {_split(dep)} — {dep.status}"
    rollout = dep.rollout
    if rollout is not None and not rollout.running and rollout.reason:
        line += f"; {rollout.strategy.value} {rollout.status.value}: {rollout.reason}"
    out_console().print(plain(line))


def _floats(option: str, text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InvalidInput(f"{option} takes numbers separated by commas, not {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise InvalidInput(f"{option} takes finite numbers, not {text!r}")
    return values


def _config(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    if len(text) > MAX_CONFIG:
        raise InvalidInput(f"--config is at most {MAX_CONFIG} characters of JSON")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"--config is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"--config is a JSON object of strategy options, not {text[:80]!r}")
    return value


@app.command()
def create(
    name: Name,
    model: Model,
    environment: Annotated[str, typer.Option("--env", help="Environment, e.g. prod.")] = "default",
    description: Annotated[str | None, typer.Option(help="What the endpoint is for.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a deployment sending all its traffic to one model version."""
    import keel

    dep = keel.create_deployment(name, model, environment=environment, description=description)
    _report(dep, as_json)


@app.command("list")
def list_(
    environment: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List deployments with their traffic split and status."""
    import keel

    deps = keel.list_deployments(environment)
    if as_json:
        print_json({"deployments": [d.to_dict() for d in deps]})
        return
    console = out_console()
    if not deps:
        console.print("no deployments yet; create one with keel deploy create NAME MODEL")
        return
    table = Table()
    for column, kind in (
        ("name", "id"), ("env", "id"), ("rev", "number"), ("traffic", "text"),
        ("status", "status"), ("updated", "time"),
    ):  # fmt: skip
        table.add_column(column, kind=kind, style="bold" if column == "name" else "")
    for d in deps:
        table.add_row(
            plain(d.name), plain(d.environment), str(d.revision), plain(_split(d)),
            plain(d.status), timestamp(d.updated_at),
        )  # fmt: skip
    console.print(table)


def _live(name: str) -> dict[str, Any] | None:
    from keel.stores import current_stores

    store = current_stores().deployments
    live = getattr(store, "live_stats", None)  # only a server measures live traffic
    return live(name) if callable(live) else None


@app.command()
def show(name: Name, as_json: JsonOption = False) -> None:
    """Show a deployment: its versions and weights, its rollout, and live figures."""
    import keel

    dep = keel.get_deployment(name)
    live = _live(dep.name)
    if as_json:
        print_json({**dep.to_dict(), "live": live})
        return
    console = out_console()
    head = Table(show_header=False, box=None)
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    for key, value in (
        ("deployment", dep.name), ("environment", dep.environment),
        ("description", dep.description or "—"), ("revision", dep.revision),
        ("status", dep.status), ("sticky key", dep.plan.sticky_key or "—"),
    ):  # fmt: skip
        head.add_row(key, plain(value))
    head.add_row("updated", timestamp(dep.updated_at))
    console.print(head)
    figures = {s["backend"]: s for s in (live or {}).get("backends", [])}
    table = Table(title="versions", title_justify="left", title_style="bold")
    table.add_column("version", kind="id")
    table.add_column("weight", kind="number")
    table.add_column("role", kind="status")
    for column in ("requests", "error rate", "p99 ms", "agreement"):
        table.add_column(column, kind="number")
    for b in dep.plan.all_backends():
        s = figures.get(b.key, {})
        agreement = s.get("extra", {}).get("agreement")
        table.add_row(
            plain(b.key), f"{b.weight:g}%", plain(b.role.value), plain(s.get("requests", "—")),
            number(s["error_rate"]) if s else "—", number(s.get("p99_ms")) if s else "—",
            number(agreement) if agreement is not None else "—",
        )  # fmt: skip
    console.print(table)
    if live is None:
        console.print("live figures: only through a Keel server (KEEL_TRACKING_URI=http://…)")
    rollout = dep.rollout
    if rollout is not None:
        console.print(
            plain(
                f"rollout {rollout.strategy.value} of {rollout.candidate} (from {rollout.stable}):"
                f" {rollout.status.value}, step {rollout.step + 1}, since "
                f"{timestamp(rollout.step_started_at)}"
                + (f" — {rollout.reason}" if rollout.reason else "")
            )
        )
        shadow = rollout.summary.get("shadow")
        if shadow:
            console.print(plain(f"shadow summary: {shadow}"))


@app.command()
def history(
    name: Name,
    limit: Annotated[int, typer.Option(help="Latest changes to show.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show a deployment's traffic changes: who, when, what and why."""
    import keel

    entries = keel.get_deployment_history(name, limit)
    if as_json:
        print_json({"history": [h.to_dict() for h in entries]})
        return
    table = Table()
    for column, kind in (
        ("rev", "number"), ("at", "time"), ("actor", "text"), ("action", "status"),
        ("traffic", "text"), ("reason", "text"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for h in entries:
        split = ", ".join(f"{b.key} {b.weight:g}%" for b in h.plan.backends if b.weight > 0)
        if h.plan.shadow is not None:
            split += f" +shadow {h.plan.shadow.key}"
        table.add_row(
            str(h.revision), timestamp(h.at), plain(h.actor), plain(h.action), plain(split),
            plain(h.reason or ""),
        )  # fmt: skip
    out_console().print(table)


@app.command()
def rollout(
    name: Name,
    model: Model,
    strategy: Annotated[str, typer.Option(help="blue-green, canary, ab or shadow.")] = "blue-green",
    steps: Annotated[str | None, typer.Option(help="Canary weights, e.g. 5,25,50,100.")] = None,
    interval: Annotated[float | None, typer.Option(help="Canary step interval, seconds.")] = None,
    weights: Annotated[str | None, typer.Option(help="A/B weights, e.g. 50,50.")] = None,
    sticky_key: Annotated[str | None, typer.Option(help="A/B request header or field.")] = None,
    outcome: Annotated[str | None, typer.Option(help="A/B outcome: binary or continuous.")] = None,
    duration: Annotated[float | None, typer.Option(help="Shadow duration, seconds.")] = None,
    config: Annotated[str | None, typer.Option(help="Strategy options as a JSON object.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Roll a new version out by a strategy (also: keel deploy update)."""
    import keel

    options = _config(config)
    flags = {
        "steps": _floats("--steps", steps), "interval_s": interval,
        "weights": _floats("--weights", weights), "sticky_key": sticky_key,
        "outcome": outcome, "duration_s": duration,
    }  # fmt: skip
    options.update({k: v for k, v in flags.items() if v is not None})
    dep = keel.rollout(name, model, strategy=strategy, config=options or None)
    _report(dep, as_json)


app.command("update", help="Roll a new version out by a strategy (same as rollout).")(rollout)


@app.command()
def traffic(
    name: Name,
    split: Annotated[list[str], typer.Argument(help="VERSION=PERCENT, e.g. churn/1=90 churn/2=10")],
    as_json: JsonOption = False,
) -> None:
    """Split traffic by hand (versions left out stay warm as standby)."""
    import keel

    weights: dict[str, float] = {}
    for item in split:
        ref, sep, value = item.rpartition("=")
        try:
            weights[ref] = float(value)
        except ValueError:
            sep = ""
        if not sep or not ref:
            raise InvalidInput(f"{item!r} is not VERSION=PERCENT, e.g. models:/churn/2=10")
    _report(keel.set_traffic(name, weights), as_json)


@app.command()
def promote(name: Name, to: To = None, as_json: JsonOption = False) -> None:
    """Promote the rollout's candidate (or an A/B variant) to all traffic."""
    import keel

    _report(keel.promote_rollout(name, to), as_json)


@app.command()
def rollback(name: Name, to: To = None, as_json: JsonOption = False) -> None:
    """Send all traffic back to the previous version (or --to); ends a running rollout."""
    import keel

    _report(keel.rollback(name, to), as_json)


@app.command()
def reload(name: Name, as_json: JsonOption = False) -> None:
    """Load the deployment's versions afresh on its server, failing no request."""
    import keel

    reloaded = keel.reload_deployment(name)
    if as_json:
        print_json({"deployment": name, "reloaded": reloaded})
    else:
        out_console().print(plain(f"{name}: reloaded {', '.join(reloaded)}"))


@app.command()
def abort(name: Name, as_json: JsonOption = False) -> None:
    """Stop the running rollout: all traffic back to the version it started from."""
    import keel

    _report(keel.abort_rollout(name), as_json)


@app.command()
def pause(name: Name, as_json: JsonOption = False) -> None:
    """Hold the running canary at its step: traffic stays, no gate is judged."""
    import keel

    _report(keel.pause_rollout(name), as_json)


@app.command()
def resume(name: Name, as_json: JsonOption = False) -> None:
    """Let a paused canary go on; its step starts again now."""
    import keel

    _report(keel.resume_rollout(name), as_json)


@app.command("outcome")
def outcome_(
    name: Name,
    value: Annotated[float, typer.Argument(help="The outcome: 0/1 (binary) or a number.")],
    variant: Annotated[str | None, typer.Option(help="The variant, e.g. churn/3.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="The request's sticky key.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Record one A/B outcome by its variant or its request key."""
    import keel

    recorded = keel.record_outcome(name, value, variant=variant, request_key=key)
    if as_json:
        print_json({"recorded": recorded})
    else:
        out_console().print(f"recorded {recorded} outcome")


@app.command()
def analysis(name: Name, as_json: JsonOption = False) -> None:
    """Show the A/B test's figures per variant, its significance test and the verdict."""
    import keel

    result = keel.ab_analysis(name)
    if as_json:
        print_json(result.to_dict())
        return
    console = out_console()
    table = Table(title=f"A/B test ({result.outcome})", title_justify="left")
    table.add_column("variant", kind="id")
    for column in ("n", "mean", "std", "p-value", "significant"):
        table.add_column(column, kind="number")
    tests = {c.variant: c for c in result.comparisons}
    for v in result.variants:
        c = tests.get(v.variant)
        table.add_row(
            plain(v.variant), str(v.n), number(v.mean), number(v.std),
            number(c.p_value) if c else "control", ("yes" if c.significant else "no") if c else "",
        )  # fmt: skip
    console.print(table)
    console.print(plain(result.verdict), style="bold")


@app.command()
def delete(name: Name) -> None:
    """Delete a deployment (its history and outcomes; the audit log keeps the record)."""
    import keel

    keel.delete_deployment(name)
    out_console().print(plain(f"deleted deployment {name}"))


# The Kubernetes render command lives in its own module (keel.cli.deploy_render).
app.command("render")(render)
