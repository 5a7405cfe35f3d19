"""The alert state machine: given a rule, its open alert and a figure, what happens next.

Pure functions, no I/O (``runner`` persists, notifies and acts on what they decide):

- no open alert + breach → **pending** (or **firing** at once when ``for`` is 1);
- pending + breach → the count goes up; at ``for`` consecutive breaches → **firing**;
- pending + no breach → **resolved** without ever firing (nothing is sent);
- firing + breach → still firing; firing + no breach → **resolved**;
- a **missing figure** (absent from the figures, or NaN: it cannot be computed, e.g. no
  traffic in the window) keeps the state as it is: not firing, not resolving, the count
  unchanged. "No data" never proves that a problem went away.

Delivery: a firing alert *delivers* (notifies its notifiers and runs its actions) once,
not on every tick (deduplication). If the rule's previous alert resolved less than
``cooldown`` ago, delivery waits until the cooldown has passed, and happens then only if
the alert is still firing (a flapping figure notifies once per cooldown). While it keeps
firing, it re-notifies every ``repeat`` (no actions) until acknowledged; when a delivered
alert resolves, its notifiers hear of it once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from keel.monitoring.alerts.entities import Alert, AlertState
from keel.monitoring.alerts.rules import AlertRule, breaches

__all__ = ["Step", "decide", "evaluate"]


@dataclass(frozen=True)
class Step:
    """What one evaluation of a rule decided.

    ``transition`` is "open-pending", "open-firing", "pending", "fire", "firing",
    "resolve" or "none" (no change, e.g. no breach and no open alert, or no data).
    ``notify`` is "firing", "repeat", "resolved" or None; ``act`` says to run the rule's
    actions (with a "firing" delivery only). ``held`` says why a delivery waits.
    """

    rule: str
    transition: str
    value: float | None
    breaches: int
    notify: str | None = None
    act: bool = False
    held: str | None = None

    @property
    def state(self) -> AlertState | None:
        """The alert's state after this step (None: no alert, or unchanged)."""
        return {
            "open-pending": AlertState.PENDING,
            "pending": AlertState.PENDING,
            "open-firing": AlertState.FIRING,
            "fire": AlertState.FIRING,
            "firing": AlertState.FIRING,
            "resolve": AlertState.RESOLVED,
        }.get(self.transition)


def _figure(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _delivery(
    rule: AlertRule, alert: Alert | None, last_resolved_at: int | None, now: int
) -> tuple[str | None, bool, str | None]:
    """Return (notify, act, held) for an alert that is firing after this step."""
    if alert is None or alert.notified_at is None:
        if last_resolved_at is not None and now - last_resolved_at < rule.cooldown_s * 1000:
            left = (rule.cooldown_s * 1000 - (now - last_resolved_at)) / 1000
            return None, False, f"cooldown: the previous alert resolved {left:.0f} s too recently"
        return "firing", True, None
    repeat_due = rule.repeat_s > 0 and now - alert.notified_at >= rule.repeat_s * 1000
    if alert.acknowledged_by is None and repeat_due:
        return "repeat", False, None
    return None, False, None


def decide(
    rule: AlertRule,
    alert: Alert | None,
    value: object,
    now: int,
    *,
    last_resolved_at: int | None = None,
) -> Step:
    """Return the step of ``rule`` with open alert ``alert`` (pending or firing, or None)
    on a figure ``value`` (None or NaN: missing) at ``now`` (epoch ms).

    ``last_resolved_at`` is when the rule's previous delivered alert resolved (cooldown).
    """
    figure = _figure(value)
    count = 0 if alert is None else alert.breaches
    if figure is None:
        if alert is not None and alert.state is AlertState.FIRING:
            # no data: stays firing, but a delivery waiting for its cooldown may still go
            notify, act, held = _delivery(rule, alert, last_resolved_at, now)
            if notify is not None:
                return Step(rule.name, "firing", None, count, notify, act)
        return Step(rule.name, "none", None, count)
    hit = breaches(figure, rule.op, rule.threshold)
    if alert is None:
        if not hit:
            return Step(rule.name, "none", figure, 0)
        if rule.for_ > 1:
            return Step(rule.name, "open-pending", figure, 1)
        notify, act, held = _delivery(rule, None, last_resolved_at, now)
        return Step(rule.name, "open-firing", figure, 1, notify, act, held)
    if not hit:
        delivered = alert.state is AlertState.FIRING and alert.notified_at is not None
        return Step(rule.name, "resolve", figure, 0, "resolved" if delivered else None)
    count += 1
    if alert.state is AlertState.PENDING:
        if count < rule.for_:
            return Step(rule.name, "pending", figure, count)
        notify, act, held = _delivery(rule, None, last_resolved_at, now)
        return Step(rule.name, "fire", figure, count, notify, act, held)
    notify, act, held = _delivery(rule, alert, last_resolved_at, now)
    return Step(rule.name, "firing", figure, count, notify, act, held)


def evaluate(
    rules: Sequence[AlertRule],
    alerts: Mapping[str, Alert],
    figures: Mapping[str, Mapping[str, float]],
    now: int,
    *,
    last_resolved: Mapping[str, int] | None = None,
) -> list[Step]:
    """Return one step per enabled rule: ``alerts`` maps rule names to their open alert,
    ``figures`` maps rule names to the figures computed over their window, and
    ``last_resolved`` rule names to their previous delivered alert's resolve time."""
    resolved = last_resolved or {}
    return [
        decide(
            rule,
            alerts.get(rule.name),
            figures.get(rule.name, {}).get(rule.metric),
            now,
            last_resolved_at=resolved.get(rule.name),
        )
        for rule in rules
        if rule.enabled
    ]
