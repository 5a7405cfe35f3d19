"""The traffic plan: what the control plane decides and the serving data plane applies.

The control plane (``keel.deploy`` store, strategies and controller) owns a deployment's
state and, after every change, produces one :class:`TrafficPlan`. The data plane (the
deployment router inside ``keel server``) loads and warms the plan's versions, then
swaps the plan in atomically; it reports :class:`BackendStats` back, which canary gates
and A/B analysis read. Both sides depend on this module only, never on each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from keel.errors import InvalidInput

__all__ = ["Backend", "BackendStats", "Role", "TrafficPlan", "sticky_point"]


class Role(StrEnum):
    """What a backend is to its deployment."""

    STABLE = "stable"  # the version serving production (blue in blue-green)
    CANDIDATE = "candidate"  # green, canary, or variant B of an A/B test
    VARIANT = "variant"  # an A/B variant other than the first
    SHADOW = "shadow"  # receives a mirror of traffic; its answers are never returned
    STANDBY = "standby"  # kept loaded and warm for instant rollback, weight 0


@dataclass(frozen=True)
class Backend:
    """One model version behind a deployment, with its share of live traffic in percent."""

    model: str
    version: int
    weight: float
    role: Role = Role.STABLE

    @property
    def key(self) -> str:
        """Return ``model/version``, the backend's label in metrics and stats."""
        return f"{self.model}/{self.version}"


@dataclass(frozen=True)
class TrafficPlan:
    """Where a deployment's requests go, at one revision of its state.

    ``backends`` with weight > 0 share live traffic (weights sum to 100); weight-0
    backends (standby, shadow) are loaded and warm but answer no live request. ``shadow``
    names the backend that receives a mirror of every live request. ``sticky_key``, when
    set, is the request header or input field whose value picks the backend by consistent
    hashing, so one key always meets the same variant.
    """

    deployment: str
    revision: int
    backends: tuple[Backend, ...]
    shadow: Backend | None = None
    sticky_key: str | None = None

    def __post_init__(self) -> None:
        live = [b for b in self.backends if b.weight > 0]
        if not live:
            raise InvalidInput(f"deployment {self.deployment!r}: no backend has traffic")
        if any(b.weight < 0 or b.weight > 100 for b in self.backends):
            raise InvalidInput(f"deployment {self.deployment!r}: weights must be 0..100")
        total = sum(b.weight for b in live)
        if abs(total - 100) > 1e-6:
            raise InvalidInput(f"deployment {self.deployment!r}: weights sum to {total:g}, not 100")
        keys = [b.key for b in self.backends]
        if len(set(keys)) != len(keys):
            raise InvalidInput(f"deployment {self.deployment!r}: a version is listed twice")

    @property
    def live(self) -> tuple[Backend, ...]:
        """Return the backends that receive live traffic."""
        return tuple(b for b in self.backends if b.weight > 0)

    def choose(self, u: float) -> Backend:
        """Return the live backend that the point ``u`` in [0, 1) falls on.

        The live backends tile [0, 1) in their listed order, each as wide as its weight,
        so the same ``u`` meets the same backend while the weights stay the same.
        """
        edge = 0.0
        live = self.live
        for backend in live:
            edge += backend.weight / 100
            if u < edge:
                return backend
        return live[-1]  # u within rounding of 1

    def choose_sticky(self, key: str) -> Backend:
        """Return the backend a request key is assigned to (the same one every time)."""
        return self.choose(sticky_point(key))

    def all_backends(self) -> tuple[Backend, ...]:
        """Return every backend the data plane must keep loaded (live, standby, shadow)."""
        extra = (self.shadow,) if self.shadow and self.shadow not in self.backends else ()
        return self.backends + extra


def sticky_point(key: str) -> float:
    """Return the point in [0, 1) that a request key hashes to (stable across processes)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class BackendStats:
    """Live figures for one backend over a window, as the data plane measured them."""

    backend: str  # Backend.key
    requests: int
    errors: int
    p99_ms: float | None
    # Further named figures (e.g. a monitoring metric, shadow agreement rate).
    extra: Mapping[str, float] = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        """Return errors / requests (0 with no requests)."""
        return self.errors / self.requests if self.requests else 0.0
