"""REST routes of alerts under /api/v1/alerts: rules, alerts, events, acknowledgement.

Viewers read; editors add and delete rules and acknowledge alerts. With auth on, a rule's
secrets (notifier and action URLs, header values, SMTP user and password) are shown only
to admins and the rule's creator, masked for everyone else. ``keel server``'s
scheduler evaluates the rules (``keel.monitoring.jobs``); these routes never evaluate.
Bodies are checked by ``keel.monitoring.alerts.rules.parse_rule``, which names the rule
and field that is wrong (400).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from keel.governance.auth import Role
from keel.governance.identity import acting_as
from keel.monitoring.alerts.rules import AlertRule, parse_rule
from keel.monitoring.alerts.rules_file import MAX_RULES
from keel.monitoring.alerts.specs import refuse_masked
from keel.monitoring.alerts.store import DEFAULT_LIMIT, MAX_LIMIT, AlertStore
from keel.server.auth import caller, require
from keel.server.deps import get_stores
from keel.server.schemas.json_values import StorableJson
from keel.stores import Stores

__all__ = ["router"]

router = APIRouter(tags=["alerts"])
_EDIT = [require(Role.EDITOR)]

RuleName = Annotated[str, Path(min_length=1, max_length=128, description="alert rule name")]
# Named {name} in the path (the alert's id): the auth route-walk test fills {name} in.
AlertId = Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="the alert's id (32 hex)")]
Number = StrictFloat | StrictInt
Duration = Annotated[StrictStr, Field(max_length=32)] | Number
Spec = Annotated[StrictStr, Field(max_length=64)] | dict[str, StorableJson]


class RuleIn(BaseModel):
    """One alert rule (the fields of the YAML format)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    deployment: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    metric: Annotated[StrictStr, Field(min_length=1, max_length=250)]
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: Number
    window: Duration = "1h"
    for_: Annotated[StrictInt, Field(alias="for", ge=1, le=10_000)] = 1
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown: Duration = "10m"
    repeat: Duration = "4h"
    notifiers: Annotated[list[Spec], Field(max_length=20)] = ["log"]
    actions: Annotated[list[Spec], Field(max_length=20)] = []
    enabled: StrictBool = True
    description: Annotated[StrictStr, Field(max_length=2_000)] | None = None


class RulesIn(BaseModel):
    """Rules to add in one transaction; ``replace`` replaces rules of the same name."""

    model_config = ConfigDict(extra="forbid")

    rules: Annotated[list[RuleIn], Field(min_length=1, max_length=MAX_RULES)]
    replace: StrictBool = False


class RulesOut(BaseModel):
    """Alert rules, as ``AlertRule.to_dict`` writes them."""

    rules: list[dict[str, Any]]


class AlertsOut(BaseModel):
    """Alerts, newest first."""

    alerts: list[dict[str, Any]]


class EventsOut(BaseModel):
    """Alert events, oldest first."""

    events: list[dict[str, Any]]


def _acting(request: Request) -> AbstractContextManager[object]:
    """Return the context a change runs in: as the ``Keel-Actor`` the client names when
    auth is off; with auth on, the token's user acts and the header is ignored."""
    claimed = request.headers.get("keel-actor")
    if request.app.state.auth or claimed is None:
        return nullcontext()
    return acting_as(claimed)  # InvalidInput (400) if empty or too long


def _shown(request: Request, rule: AlertRule) -> dict[str, Any]:
    """Return ``rule`` as the caller may read it: whole for an admin or its creator (and
    with auth off), its secrets masked for anyone else."""
    who = caller(request)
    if not request.app.state.auth or (
        who is not None and (who.role >= Role.ADMIN or who.user == rule.created_by)
    ):
        return rule.to_dict()
    return rule.masked()


def _store(stores: Stores = Depends(get_stores)) -> AlertStore:
    return stores.alerts  # type: ignore[no-any-return, attr-defined]


Store = Annotated[AlertStore, Depends(_store)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@router.post("/alerts/rules", status_code=201, response_model=RulesOut, dependencies=_EDIT)
def add_rules(body: RulesIn, store: Store, request: Request) -> dict[str, Any]:
    """Add rules (all or none); 409 if a name is taken and not ``replace``."""
    rules = [
        parse_rule(rule.model_dump(by_alias=True), where=f"rule #{i + 1}")
        for i, rule in enumerate(body.rules)
    ]
    for rule in rules:
        for kind, specs in (("notifier", rule.notifiers), ("action", rule.actions)):
            for i, spec in enumerate(specs):
                refuse_masked(spec, f"alert rule {rule.name!r}: {kind} #{i + 1}")
    with _acting(request):
        stored = store.add_rules(rules, replace=body.replace)
    return {"rules": [_shown(request, r) for r in stored]}


@router.get("/alerts/rules", response_model=RulesOut)
def list_rules(
    store: Store,
    request: Request,
    deployment: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> dict[str, Any]:
    """Return every rule (on one deployment if given), by name; secrets masked unless the
    caller is an admin or the rule's creator."""
    rules = store.list_rules(deployment=deployment)
    return {"rules": [_shown(request, r) for r in rules]}


@router.get("/alerts/rules/{name}", response_model=dict[str, Any])
def get_rule(name: RuleName, store: Store, request: Request) -> dict[str, Any]:
    """Return one rule (secrets masked unless the caller is an admin or its creator); 404
    if there is none by that name."""
    return _shown(request, store.get_rule(name))


@router.delete("/alerts/rules/{name}", status_code=204, response_class=Response, dependencies=_EDIT)
def delete_rule(name: RuleName, store: Store, request: Request) -> Response:
    """Delete a rule (its open alert resolves); answer 204."""
    with _acting(request):
        store.delete_rule(name)
    return Response(status_code=204)


@router.get("/alerts", response_model=AlertsOut)
def list_alerts(
    store: Store,
    state: Annotated[Literal["pending", "firing", "resolved"] | None, Query()] = None,
    rule: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Return the latest ``limit`` alerts (of one state or rule), newest first."""
    alerts = store.list_alerts(state=state, rule=rule, limit=limit)
    return {"alerts": [a.to_dict() for a in alerts]}


@router.get("/alerts/events", response_model=EventsOut)
def alert_events(
    store: Store,
    alert_id: Annotated[str | None, Query(pattern="^[0-9a-f]{32}$")] = None,
    rule: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """Return the latest ``limit`` events (of one alert or rule), oldest first."""
    events = store.alert_events(alert_id=alert_id, rule=rule, limit=limit)
    return {"events": [e.to_dict() for e in events]}


@router.get("/alerts/{name}", response_model=dict[str, Any])
def get_alert(name: AlertId, store: Store) -> dict[str, Any]:
    """Return one alert by its id; 404 if there is none."""
    return store.get_alert(name).to_dict()


@router.post("/alerts/{name}/ack", response_model=dict[str, Any], dependencies=_EDIT)
def acknowledge(name: AlertId, store: Store, request: Request) -> dict[str, Any]:
    """Acknowledge an alert (by id) as the caller: it stops re-notifying; 409 if it is
    resolved or acknowledged already."""
    with _acting(request):
        return store.acknowledge(name).to_dict()
