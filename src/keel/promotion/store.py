"""The promotions store interface: every backend (SQL, REST) implements exactly this.

A promotion is asked of the store and decided where the metadata is: the SQL store runs
the environment's gates in this process (``keel.promotion.engine``); the REST store asks
the server, which runs the gates of its own environment of that name on its own data and
records its own result; a client never sends a result to be stored. Approvals of a
version for an environment and each promotion attempt append an audit entry in the same
transaction as their row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from keel.errors import InvalidInput
from keel.promotion.entities import OUTCOMES, Approval, PromotionResult

if TYPE_CHECKING:
    from pathlib import Path

    from keel.environments import Environment
    from keel.registry.entities import ModelVersion
    from keel.stores import Stores

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_COMMENT",
    "MAX_LIMIT",
    "PromotionStore",
    "check_comment",
    "check_limit",
    "check_record",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_COMMENT = 10_000
MAX_RECORD = 1_000_000  # characters of a promotion's gates and rollout, as JSON


def check_limit(limit: object) -> int:
    """Return a valid history limit (1..``MAX_LIMIT``); ``InvalidInput`` otherwise."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r:.80}")
    return limit


def check_comment(comment: object) -> str | None:
    """Return a valid approval comment (None or text of at most ``MAX_COMMENT``)."""
    if comment is None:
        return None
    # NUL: PostgreSQL refuses it in text (a DataError, a 500 through the server)
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT or "\x00" in comment:
        raise InvalidInput(f"a comment is text of at most {MAX_COMMENT} characters, without NUL")
    return comment.strip() or None


def check_record(record: PromotionResult) -> PromotionResult:
    """Return ``record`` if its outcome is known; ``InvalidInput`` otherwise."""
    if record.outcome not in OUTCOMES:
        raise InvalidInput(f"a promotion's outcome is one of {OUTCOMES}, not {record.outcome!r}")
    for field, text in (("reason", record.reason), ("deployment", record.deployment)):
        if isinstance(text, str) and "\x00" in text:
            raise InvalidInput(f"a promotion's {field} must not contain NUL characters")
    return record


class PromotionStore(ABC):
    """Approvals and promotion attempts, per model version and environment."""

    @abstractmethod
    def add_approval(
        self,
        model: str,
        version: int,
        environment: str,
        *,
        comment: str | None = None,
        required_role: str | None = None,
    ) -> Approval:
        """Return the approval of ``model/version`` for ``environment`` by the current
        actor; ``NotFound`` if the version is not registered. A server with auth on
        records the approver's role and refuses (403) one below ``required_role``."""

    @abstractmethod
    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        """Return the approvals of ``model/version`` for ``environment``, oldest first."""

    @abstractmethod
    def promote(
        self,
        stores: Stores,
        version: ModelVersion,
        environment: str | Environment | None,
        *,
        dry_run: bool,
        project: Path,
    ) -> PromotionResult:
        """Return the recorded attempt to promote ``version`` into ``environment`` (None:
        the current one, KEEL_ENV / ``--env``): its
        gates evaluated where the metadata is, the alias moved and the rollout started
        if every gate passed (not with ``dry_run``), as the current actor.

        A SQL store runs it here on ``stores`` (relative evaluation data under
        ``project``), an environment built in code included. Through a server, the
        server runs the gates of the environment of that name in its own config.toml on
        its own data (its project folder); an ``Environment`` object is refused there,
        since the server cannot vouch for gates it does not hold."""

    @abstractmethod
    def list_promotions(
        self,
        *,
        environment: str | None = None,
        model: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[PromotionResult]:
        """Return the latest ``limit`` promotions (of one environment or model), newest first."""
