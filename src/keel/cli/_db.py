"""The metadata database as the CLI inspects it: opened without the schema check.

Every SDK call refuses a database at another schema. ``keel info``, ``keel db`` and
``keel doctor`` must still look at one, so they open it here, unchecked, and close it after.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from keel.errors import KeelError
from keel.store.database import Database, mask_url

if TYPE_CHECKING:
    from keel.config import KeelSettings

__all__ = ["SchemaReport", "schema_report", "sqlite_file", "unchecked_database"]


@contextmanager
def unchecked_database(settings: KeelSettings) -> Iterator[Database]:
    """Yield the configured metadata database without checking its schema; close it after."""
    db = Database(settings.resolved_tracking_uri(), busy_timeout=settings.sqlite_busy_timeout)
    try:
        yield db
    finally:
        db.dispose()


def sqlite_file(url: str) -> Path | None:
    """Return the file a ``sqlite:///`` URL names (None for other URLs and ``:memory:``)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


@dataclass(frozen=True)
class SchemaReport:
    """Where the configured database's schema stands, or why it could not be read."""

    state: str  # current | out_of_date | too_new | empty | not_created | unavailable
    revision: str | None
    head: str
    written_by: str | None
    message: str

    @property
    def ok(self) -> bool:
        """Whether commands can use the database as it is."""
        return self.state in ("current", "empty", "not_created")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this report."""
        return {
            "state": self.state,
            "revision": self.revision,
            "head": self.head,
            "written_by": self.written_by,
            "message": self.message,
        }


def schema_report(settings: KeelSettings) -> SchemaReport:
    """Return the schema state of the configured database; never raises for a bad store."""
    from keel.store.migrate import check_status, schema_status
    from keel.store.schema import HEAD_REVISION

    url = settings.resolved_tracking_uri()
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return SchemaReport(
            "not_created", None, HEAD_REVISION, None,
            f"{path} does not exist yet; it is created at revision {HEAD_REVISION} on first use",
        )  # fmt: skip
    try:
        with unchecked_database(settings) as db:
            status = schema_status(db)
    except (KeelError, SQLAlchemyError) as exc:
        message = exc.message if isinstance(exc, KeelError) else f"{mask_url(url)}: {exc}"
        return SchemaReport("unavailable", None, HEAD_REVISION, None, message)
    if status.is_empty:
        return SchemaReport(
            "empty", None, status.head, None,
            f"the database is empty; it is created at revision {status.head} on first use",
        )  # fmt: skip
    if status.is_current:
        return SchemaReport(
            "current", status.revision, status.head, status.written_by,
            f"at revision {status.revision}, the current schema",
        )  # fmt: skip
    state = "out_of_date" if status.is_older else "too_new"
    try:
        check_status(status, url)
        message = ""  # pragma: no cover - check_status raises for any non-current status
    except KeelError as exc:
        message = exc.message
    return SchemaReport(state, status.revision, status.head, status.written_by, message)
