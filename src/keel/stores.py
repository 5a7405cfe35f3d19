"""Opens the stores a tracking URI and an artifact URI name, by scheme.

``sqlite:`` and ``postgresql[+psycopg]:`` open the SQL implementations; each scheme maps to
a factory imported lazily, so a backend's libraries load only when it is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.config import KeelSettings
    from keel.deploy.store import DeploymentStore
    from keel.hpo.store import StudyStore
    from keel.monitoring.alerts.store import AlertStore
    from keel.pipelines.schedule_store import ScheduleStore
    from keel.promotion.store import PromotionStore
    from keel.registry.store import RegistryStore
    from keel.store.artifacts import BlobStore
    from keel.tracking.store import TrackingStore

__all__ = ["Stores", "current_stores", "open_stores", "supported_schemes"]


@dataclass(frozen=True)
class Stores:
    """The tracking, registry and artifact stores one configuration points at."""

    tracking_uri: str
    artifact_uri: str
    tracking: TrackingStore
    registry: RegistryStore
    artifacts: BlobStore

    @cached_property
    def deployments(self) -> DeploymentStore:
        """Return the deployments store on the same backend as ``tracking`` (opened once)."""
        db = getattr(self.tracking, "db", None)
        if db is not None:
            from keel.deploy.sql_store import SqlDeploymentStore

            return SqlDeploymentStore(db)
        from keel.client.deployments import RestDeploymentStore

        return RestDeploymentStore(self.tracking.http)  # type: ignore[attr-defined]

    @cached_property
    def pipeline_schedules(self) -> ScheduleStore:
        """Return the pipeline schedules and triggers store on ``tracking``'s backend."""
        db = getattr(self.tracking, "db", None)
        if db is not None:
            from keel.pipelines.sql_schedules import SqlScheduleStore

            return SqlScheduleStore(db)
        from keel.client.pipelines import RestScheduleStore

        return RestScheduleStore(self.tracking.http)  # type: ignore[attr-defined]

    @cached_property
    def alerts(self) -> AlertStore:
        """Return the alert rules and alerts store on the same backend as ``tracking``."""
        db = getattr(self.tracking, "db", None)
        if db is not None:
            from keel.monitoring.alerts.sql_store import SqlAlertStore

            return SqlAlertStore(db)
        from keel.client.alerts import RestAlertStore

        return RestAlertStore(self.tracking.http)  # type: ignore[attr-defined]

    @cached_property
    def promotions(self) -> PromotionStore:
        """Return the promotions store on the same backend as ``tracking`` (opened once)."""
        db = getattr(self.tracking, "db", None)
        if db is not None:
            from keel.promotion.sql_store import SqlPromotionStore

            return SqlPromotionStore(db)
        from keel.client.promotions import RestPromotionStore

        return RestPromotionStore(self.tracking.http)  # type: ignore[attr-defined]

    @cached_property
    def hpo(self) -> StudyStore:
        """Return the studies store (Optuna journals) on the same backend as ``tracking``."""
        db = getattr(self.tracking, "db", None)
        if db is not None:
            from keel.hpo.sql_store import SqlStudyStore

            return SqlStudyStore(db)
        from keel.client.hpo import RestStudyStore

        return RestStudyStore(self.tracking.http)  # type: ignore[attr-defined]


_Opened = tuple["TrackingStore", "RegistryStore", "BlobStore | None"]


def _open_sql(uri: str, settings: KeelSettings) -> _Opened:
    from keel.registry.sql_store import SqlRegistryStore
    from keel.store.database import get_database
    from keel.tracking.sql_store import SqlTrackingStore

    db = get_database(uri, busy_timeout=settings.sqlite_busy_timeout)
    return SqlTrackingStore(db), SqlRegistryStore(db), None


def _open_rest(uri: str, settings: KeelSettings) -> _Opened:
    # Through a server, artifacts go up and down through the server too.
    from keel.client.artifacts import RestBlobStore
    from keel.client.http import KeelHttp
    from keel.client.registry import RestRegistryStore
    from keel.client.tracking import RestTrackingStore

    http = KeelHttp(uri, token=settings.token or None)
    return RestTrackingStore(http), RestRegistryStore(http), RestBlobStore(http)


# scheme -> factory returning (tracking store, registry store, blob store or None for the
# one the artifact URI names)
_BACKENDS: dict[str, Callable[[str, KeelSettings], _Opened]] = {
    "sqlite": _open_sql,
    "postgresql": _open_sql,
    "postgresql+psycopg": _open_sql,
    "http": _open_rest,
    "https": _open_rest,
}


def supported_schemes() -> list[str]:
    """Return the tracking URI schemes this Keel can open."""
    return sorted(_BACKENDS)


def open_stores(settings: KeelSettings) -> Stores:
    """Return the stores ``settings`` name (database created or checked on first use)."""
    from keel.store.artifacts import open_artifact_store

    uri = settings.resolved_tracking_uri()
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    factory = _BACKENDS.get(scheme)
    if factory is None:
        raise InvalidInput(
            f"unsupported tracking URI {uri!r}: scheme {scheme or '(none)'!r} is not one of "
            f"{', '.join(supported_schemes())}"
        )
    tracking, registry, blobs = factory(uri, settings)
    if blobs is not None:
        return Stores(uri, uri, tracking, registry, blobs)
    artifact_uri = settings.resolved_artifact_uri()
    return Stores(uri, artifact_uri, tracking, registry, open_artifact_store(artifact_uri))


_lock = threading.Lock()
_current: tuple[KeelSettings, Stores] | None = None


def current_stores() -> Stores:
    """Return the stores of the current settings, opened once per settings object."""
    global _current
    from keel.config import get_settings

    settings = get_settings()
    with _lock:
        if _current is None or _current[0] is not settings:
            _current = (settings, open_stores(settings))
        return _current[1]
