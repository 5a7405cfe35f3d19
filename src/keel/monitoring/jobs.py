"""The periodic jobs the monitoring domain gives ``keel server`` (see :mod:`keel.scheduler`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keel.scheduler import PeriodicJob
    from keel.stores import Stores

__all__ = ["server_jobs"]


def server_jobs(stores: Stores) -> list[PeriodicJob]:
    """Return the jobs to run in a server on ``stores``."""
    return []
