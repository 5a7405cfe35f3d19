"""Who is acting: the actor every audit entry records.

By default the actor is this process's login user (``keel.tracking.context.current_user``).
``acting_as(actor)`` sets it for the current thread or task only (a ``ContextVar``), which is
how the server will attribute each request's changes to the authenticated caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from keel.errors import InvalidInput

__all__ = ["acting_as", "current_actor"]

_MAX_ACTOR = 256
_actor: ContextVar[str | None] = ContextVar("keel_actor", default=None)


def current_actor() -> str:
    """Return the actor of the current context: the ``acting_as`` one, else the login user."""
    actor = _actor.get()
    if actor is not None:
        return actor
    from keel.tracking.context import current_user

    return current_user()


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Yield ``actor`` after making it the current actor until the block ends."""
    if not isinstance(actor, str) or not actor.strip() or len(actor) > _MAX_ACTOR:
        raise InvalidInput(
            f"an actor is a non-empty name of at most {_MAX_ACTOR} characters, not {actor!r}"
        )
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)
