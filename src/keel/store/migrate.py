"""Schema state of a metadata database: create, check, back up and upgrade.

A new database is created at the current schema. An older one is refused until
``keel db upgrade`` (which backs up a SQLite file first); one written by a newer Keel
is refused with both versions named.
"""

from __future__ import annotations

import shutil
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, inspect, select, text

from keel._version import __version__
from keel.errors import InvalidInput, KeelError, SchemaOutOfDate, SchemaTooNew
from keel.store import schema
from keel.store.database import Database, mask_url

__all__ = ["SchemaStatus", "backup_sqlite", "ensure_schema", "schema_status", "upgrade"]

_ALEMBIC_TABLE = "alembic_version"


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands relative to this Keel."""

    revision: str | None
    head: str
    written_by: str | None

    @property
    def is_empty(self) -> bool:
        return self.revision is None

    @property
    def is_current(self) -> bool:
        return self.revision == self.head

    @property
    def is_older(self) -> bool:
        return self.revision in schema.REVISIONS[:-1]

    @property
    def is_newer(self) -> bool:
        return self.revision is not None and self.revision not in schema.REVISIONS


def _read_status(conn: Connection) -> SchemaStatus:
    names = set(inspect(conn).get_table_names())
    if _ALEMBIC_TABLE not in names:
        if names & {t.name for t in schema.metadata.sorted_tables}:
            raise InvalidInput(
                "the metadata database has Keel-like tables but no schema revision; "
                "it was not created by Keel and will not be touched"
            )
        return SchemaStatus(None, schema.HEAD_REVISION, None)
    revision = conn.execute(text(f"SELECT version_num FROM {_ALEMBIC_TABLE}")).scalar()
    written_by = None
    if "keel_meta" in names:
        written_by = conn.execute(
            select(schema.keel_meta.c.value).where(schema.keel_meta.c.key == "written_by")
        ).scalar()
    return SchemaStatus(revision, schema.HEAD_REVISION, written_by)


def schema_status(db: Database) -> SchemaStatus:
    """Return the schema revision of ``db`` without changing anything."""
    with db.read() as conn:
        return _read_status(conn)


def _stamp(conn: Connection) -> None:
    conn.execute(text(f"DELETE FROM {_ALEMBIC_TABLE}"))
    conn.execute(
        text(f"INSERT INTO {_ALEMBIC_TABLE} (version_num) VALUES (:v)"),
        {"v": schema.HEAD_REVISION},
    )
    for key, value in (("written_by", __version__), ("updated_at", str(int(time.time())))):
        conn.execute(schema.keel_meta.delete().where(schema.keel_meta.c.key == key))
        conn.execute(schema.keel_meta.insert().values(key=key, value=value))


def ensure_schema(db: Database) -> None:
    """Create a new database at the current schema, or check an existing one is current."""
    status = schema_status(db)
    if status.is_empty:
        with db.write() as conn:
            if db.dialect == "postgresql":
                # Two processes creating the same new database take turns.
                conn.execute(text("SELECT pg_advisory_xact_lock(7302744101)"))
            if _read_status(conn).is_empty:
                schema.metadata.create_all(conn)
                conn.execute(
                    text(
                        f"CREATE TABLE {_ALEMBIC_TABLE} (version_num VARCHAR(32) NOT NULL,"
                        f" CONSTRAINT {_ALEMBIC_TABLE}_pkc PRIMARY KEY (version_num))"
                    )
                )
                _stamp(conn)
        return
    check_status(status, db.url)


def check_status(status: SchemaStatus, url: str) -> None:
    """Raise unless ``status`` is the current schema."""
    if status.is_current:
        return
    if status.is_older:
        raise SchemaOutOfDate(
            f"metadata store {mask_url(url)} is at schema revision {status.revision} "
            f"(written by Keel {status.written_by or 'unknown'}); Keel {__version__} needs "
            f"revision {status.head}. Run `keel db upgrade` to upgrade it"
            " (a SQLite file is backed up first)."
        )
    raise SchemaTooNew(
        f"metadata store {mask_url(url)} is at schema revision {status.revision}, written by "
        f"Keel {status.written_by or 'unknown'}; this is Keel {__version__}, which knows "
        f"revisions up to {status.head}. Upgrade Keel (pip install -U keel-mlops) to use it."
    )


def backup_sqlite(db: Database) -> Path | None:
    """Copy a SQLite database file next to itself; return the copy's path (None otherwise)."""
    if db.dialect != "sqlite":
        return None
    database = db.engine.url.database
    if not database or database == ":memory:":
        return None
    source = Path(database)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        target = source.with_name(f"{source.name}.backup-{stamp}{suffix}")
        try:
            target.touch(exist_ok=False)  # claim the name: never overwrite an older backup
            break
        except FileExistsError:
            continue
    else:
        raise KeelError(f"could not find a free backup name beside {source}")
    # The SQLite online-backup API gives a consistent copy even with a WAL file beside it.
    import sqlite3

    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    shutil.copymode(source, target)
    return target


def upgrade(db: Database) -> tuple[str | None, str, Path | None]:
    """Upgrade ``db`` to the current schema; return (from revision, to revision, backup)."""
    status = schema_status(db)
    if status.is_newer:
        check_status(status, db.url)
    if status.is_current:
        return status.revision, status.head, None
    if status.is_empty:
        ensure_schema(db)
        return None, status.head, None
    backup = backup_sqlite(db)
    run_alembic_upgrade(db, status.head)
    with db.write() as conn:
        _stamp(conn)
    return status.revision, status.head, backup


def alembic_config(db: Database, connection: Connection | None = None):  # type: ignore[no-untyped-def]
    """Return an Alembic ``Config`` pointed at Keel's migrations and ``db``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def run_alembic_upgrade(db: Database, target: str) -> None:
    """Run Alembic's migrations on ``db`` up to ``target`` inside one transaction."""
    from alembic import command

    with db.write() as conn:
        command.upgrade(alembic_config(db, conn), target)
