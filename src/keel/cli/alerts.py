"""``keel alerts rule add | list | show | delete | load FILE``, ``keel alerts list``,
``keel alerts show ID``, ``keel alerts events``, ``keel alerts ack ID``.

Thin over the SDK (``keel.add_alert_rule`` …): a table or one line for people, one JSON
document with ``--json``. ``keel server`` evaluates the rules; these commands never do.

    keel alerts rule add churn-drift --deployment churn-prod --metric drift_share \\
        --op '>' --threshold 0.3 --window 1h --for 2 --severity critical \\
        --notifier log --notifier '{"type": "slack", "url_env": "SLACK_WEBHOOK_URL"}' \\
        --action rollback
"""

from __future__ import annotations

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
from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.monitoring.alerts import Alert, AlertRule

__all__ = ["app"]

app = typer.Typer(
    help="Alerts: rules over monitored figures, firing alerts, acknowledgement.",
    no_args_is_help=True,
)
rule_app = typer.Typer(
    help="Alert rules: add, list, show, delete, load a YAML file.", no_args_is_help=True
)
app.add_typer(rule_app, name="rule")

RuleName = Annotated[str, typer.Argument(help="The rule, e.g. churn-drift.")]
AlertId = Annotated[str, typer.Argument(help="The alert's id (keel alerts list).")]
MAX_SPEC = 10_000


def _spec(option: str, text: str) -> str | dict[str, Any]:
    """A notifier or action: a bare type name, or a JSON object."""
    if len(text) > MAX_SPEC:
        raise InvalidInput(f"{option} is at most {MAX_SPEC} characters")
    if not text.lstrip().startswith("{"):
        return text
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{option} {text[:60]!r} is not a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{option} takes a type name or a JSON object, not {text[:60]!r}")
    return value


def _rule_line(rule: AlertRule) -> str:
    state = "" if rule.enabled else " (disabled)"
    return (
        f"{rule.name}: {rule.condition()} on {rule.deployment}, for {rule.for_}, "
        f"{rule.severity}{state}"
    )


@rule_app.command("add")
def rule_add(
    name: RuleName,
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="The deployment watched.")],
    metric: Annotated[str, typer.Option(help="The figure, e.g. drift_share, error_rate.")],
    op: Annotated[str, typer.Option(help="One of > >= < <= == !=.")],
    threshold: Annotated[float, typer.Option(help="The bound the figure is compared with.")],
    window: Annotated[str, typer.Option(help="Figures over the last 30s, 5m, 1h, 1d…")] = "1h",
    for_: Annotated[
        int, typer.Option("--for", help="Consecutive breaching evaluations before firing.")
    ] = 1,
    severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    cooldown: Annotated[
        str, typer.Option(help="A firing soon after a resolve waits this long.")
    ] = "10m",
    repeat: Annotated[
        str, typer.Option(help="Re-notify while firing, unacknowledged (0: never).")
    ] = "4h",
    notifier: Annotated[
        list[str] | None,
        typer.Option(help='log, or a JSON object ({"type": "webhook", "url": …}); repeatable.'),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            help="rollback, abort_canary, pause_canary, trigger, or a JSON object; repeatable."
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the rule watches for.")] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Store it without evaluating it.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a rule of that name.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add an alert rule: fire when METRIC OP THRESHOLD holds over WINDOW for N evaluations."""
    from keel.monitoring.alerts import add_alert_rule

    rule = add_alert_rule(
        name,
        deployment=deployment,
        metric=metric,
        op=op,
        threshold=threshold,
        window=window,
        for_=for_,
        severity=severity,
        cooldown=cooldown,
        repeat=repeat,
        notifiers=None if notifier is None else [_spec("--notifier", n) for n in notifier],
        actions=[_spec("--action", a) for a in action or []],
        enabled=not disabled,
        description=description,
        replace=replace,
    )
    if as_json:
        print_json(rule.to_dict())
        return
    out_console().print(plain(_rule_line(rule)))


def _types(specs: Any) -> str:
    return ", ".join(str(s.get("type")) for s in specs) or "—"


@rule_app.command("list")
def rule_list(
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Only this one.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List alert rules with their condition, notifiers and actions."""
    from keel.monitoring.alerts import list_alert_rules

    rules = list_alert_rules(deployment)
    if as_json:
        print_json({"rules": [r.to_dict() for r in rules]})
        return
    console = out_console()
    if not rules:
        console.print("no alert rules yet; add one with keel alerts rule add or load a file")
        return
    table = Table()
    for column, kind in (
        ("rule", "id"), ("deployment", "id"), ("condition", "text"), ("for", "number"),
        ("severity", "status"), ("notifiers", "text"), ("actions", "text"), ("on", "status"),
    ):  # fmt: skip
        table.add_column(column, kind=kind, style="bold" if column == "rule" else "")
    for r in rules:
        condition = f"{r.metric} {r.op} {r.threshold:g} / {r.window}"
        table.add_row(
            plain(r.name), plain(r.deployment), plain(condition), str(r.for_),
            plain(r.severity), plain(_types(r.notifiers)), plain(_types(r.actions)),
            "yes" if r.enabled else "no",
        )  # fmt: skip
    console.print(table)


@rule_app.command("show")
def rule_show(name: RuleName, as_json: JsonOption = False) -> None:
    """Show one rule (URLs and passwords masked unless --json)."""
    from keel.monitoring.alerts import get_alert_rule

    rule = get_alert_rule(name)
    if as_json:
        print_json(rule.to_dict())
        return
    console = out_console()
    console.print(plain(_rule_line(rule)))
    masked = rule.masked()
    for key in ("cooldown", "repeat", "notifiers", "actions", "description"):
        console.print(plain(f"  {key}: {masked[key]}"))


@rule_app.command("delete")
def rule_delete(name: RuleName, as_json: JsonOption = False) -> None:
    """Delete a rule; its open alert resolves (alerts and events are kept)."""
    from keel.monitoring.alerts import delete_alert_rule

    delete_alert_rule(name)
    if as_json:
        print_json({"deleted": name})
        return
    out_console().print(plain(f"deleted alert rule {name}"))


@rule_app.command("load")
def rule_load(
    file: Annotated[
        str, typer.Argument(help="A YAML file of rules (see keel.monitoring.alerts.rules).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Load rules from a YAML file, replacing rules of the same name (all or none)."""
    from keel.monitoring.alerts import load_alert_rules

    rules = load_alert_rules(file)
    if as_json:
        print_json({"rules": [r.to_dict() for r in rules]})
        return
    console = out_console()
    console.print(plain(f"loaded {len(rules)} alert rule(s) from {file}"))
    for rule in rules:
        console.print(plain(f"  {_rule_line(rule)}"))


def _value(alert: Alert) -> str:
    return "—" if alert.value is None else number(alert.value)


@app.command("list")
def list_(
    state: Annotated[str | None, typer.Option(help="pending, firing or resolved.")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule's alerts.")] = None,
    limit: Annotated[int, typer.Option(help="Latest alerts to show.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List alerts, newest first."""
    from keel.monitoring.alerts import list_alerts

    alerts = list_alerts(state, rule, limit)
    if as_json:
        print_json({"alerts": [a.to_dict() for a in alerts]})
        return
    console = out_console()
    if not alerts:
        console.print("no alerts" + (f" {state}" if state else ""))
        return
    table = Table()
    for column, kind in (
        ("id", "id"), ("rule", "id"), ("deployment", "id"), ("state", "status"),
        ("value", "number"), ("severity", "status"), ("started", "time"), ("acked by", "text"),
    ):  # fmt: skip
        table.add_column(column, kind=kind, style="bold" if column == "rule" else "")
    for a in alerts:
        table.add_row(
            a.alert_id, plain(a.rule), plain(a.deployment), plain(a.state.value), _value(a),
            plain(a.severity), timestamp(a.started_at), plain(a.acknowledged_by or "—"),
        )  # fmt: skip
    console.print(table)


@app.command()
def show(alert_id: AlertId, as_json: JsonOption = False) -> None:
    """Show one alert and what happened to it."""
    from keel.monitoring.alerts import get_alert, get_alert_events

    alert = get_alert(alert_id)
    events = get_alert_events(alert_id)
    if as_json:
        print_json({**alert.to_dict(), "events": [e.to_dict() for e in events]})
        return
    console = out_console()
    console.print(
        plain(
            f"alert {alert.alert_id} of {alert.rule} on {alert.deployment}: {alert.state.value}, "
            f"{alert.metric} = {_value(alert)}"
            + (f", acknowledged by {alert.acknowledged_by}" if alert.acknowledged_by else "")
        )
    )
    if alert.last_error:
        console.print(plain(f"last error: {alert.last_error}"))
    _events_table(events)


def _events_table(events: Any) -> None:
    table = Table()
    for column, kind in (
        ("at", "time"), ("rule", "id"), ("kind", "status"), ("value", "number"), ("detail", "text"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for e in events:
        detail = orjson.dumps(dict(e.detail)).decode()
        value = "—" if e.value is None else number(e.value)
        table.add_row(timestamp(e.at), plain(e.rule), plain(e.kind), value, plain(detail[:200]))
    out_console().print(table)


@app.command()
def events(
    rule: Annotated[str | None, typer.Option(help="Only this rule's events.")] = None,
    limit: Annotated[int, typer.Option(help="Latest events to show.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List alert events (state changes, notifications, actions, errors), oldest first."""
    from keel.monitoring.alerts import get_alert_events

    found = get_alert_events(None, rule, limit)
    if as_json:
        print_json({"events": [e.to_dict() for e in found]})
        return
    _events_table(found)


@app.command()
def ack(alert_id: AlertId, as_json: JsonOption = False) -> None:
    """Acknowledge an alert as you: it stops re-notifying."""
    from keel.monitoring.alerts import acknowledge_alert

    alert = acknowledge_alert(alert_id)
    if as_json:
        print_json(alert.to_dict())
        return
    out_console().print(
        plain(f"acknowledged alert {alert.alert_id} of {alert.rule} as {alert.acknowledged_by}")
    )
