"""The alerts store interface: every backend (SQL, REST) implements exactly this.

Rules are written by people (SDK, CLI, REST); alerts and their events are written by the
evaluator in ``keel server`` (``SqlAlertStore``'s evaluator methods) and acknowledged by
people. Every change appends an audit entry in the same transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from keel.errors import InvalidInput
from keel.monitoring.alerts.entities import Alert, AlertEvent, AlertState
from keel.monitoring.alerts.rules import AlertRule

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "AlertStore", "check_limit"]

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000


def check_limit(limit: object) -> int:
    """Return a valid listing limit (1..``MAX_LIMIT``); ``InvalidInput`` otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r:.40}")
    return limit


class AlertStore(ABC):
    """Alert rules, the alerts they raised, and what happened to each."""

    @abstractmethod
    def add_rules(self, rules: Sequence[AlertRule], *, replace: bool = False) -> list[AlertRule]:
        """Return the rules as stored, all added in one transaction; ``AlreadyExists`` if
        a name is taken and not ``replace``."""

    @abstractmethod
    def get_rule(self, name: str) -> AlertRule:
        """Return one rule; ``NotFound`` otherwise."""

    @abstractmethod
    def list_rules(self, *, deployment: str | None = None) -> list[AlertRule]:
        """Return every rule (on one deployment if given), by name."""

    @abstractmethod
    def delete_rule(self, name: str) -> None:
        """Delete a rule; its open alert resolves (its alerts and events are kept)."""

    @abstractmethod
    def list_alerts(
        self,
        *,
        state: AlertState | str | None = None,
        rule: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[Alert]:
        """Return the latest ``limit`` alerts (of one state or rule if given), newest first."""

    @abstractmethod
    def get_alert(self, alert_id: str) -> Alert:
        """Return one alert; ``NotFound`` otherwise."""

    @abstractmethod
    def alert_events(
        self, *, alert_id: str | None = None, rule: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> list[AlertEvent]:
        """Return the latest ``limit`` events (of one alert or rule if given), oldest first."""

    @abstractmethod
    def acknowledge(self, alert_id: str) -> Alert:
        """Return the alert acknowledged by the current actor: it stops re-notifying.
        ``Conflict`` if it is resolved or already acknowledged."""
