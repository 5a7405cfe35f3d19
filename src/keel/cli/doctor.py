"""``keel doctor``: check the stores are reachable, the schema current and complete."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from keel.cli._output import JsonOption, err_console, out_console, print_json
from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.config import KeelSettings
    from keel.store.database import Database

__all__ = ["doctor"]


_DB_CHECKS = ("schema current", "tables and indexes present")


@dataclass(frozen=True)
class Check:
    """One check's outcome."""

    name: str
    ok: bool
    detail: str


def _reachable(db: Database) -> str:
    from sqlalchemy import text

    from keel.store.database import mask_url
    from keel.store.migrate import ensure_schema, schema_status

    with db.read() as conn:
        conn.execute(text("SELECT 1"))
    if schema_status(db).is_empty:  # a brand-new store is created, as on any first use
        ensure_schema(db)
        return f"{mask_url(db.url)} (created at the current schema)"
    return mask_url(db.url)


def _schema_current(db: Database) -> str:
    from keel.store.migrate import check_status, schema_status

    status = schema_status(db)
    check_status(status, db.url)
    return f"revision {status.revision}"


def _tables_and_indexes(db: Database) -> str:
    from sqlalchemy import inspect

    from keel.store.schema import metadata

    missing: list[str] = []
    with db.read() as conn:
        inspector = inspect(conn)
        present = set(inspector.get_table_names())
        for table in metadata.sorted_tables:
            if table.name not in present:
                missing.append(f"table {table.name}")
                continue
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            missing += [
                f"column {table.name}.{c.name}" for c in table.columns if c.name not in columns
            ]
            indexes = {i["name"] for i in inspector.get_indexes(table.name)}
            missing += [f"index {i.name}" for i in table.indexes if i.name not in indexes]
    if missing:
        raise KeelError(f"missing {', '.join(missing)}; run `keel db upgrade` or restore a backup")
    tables = len(metadata.tables)
    indexes = sum(len(t.indexes) for t in metadata.tables.values())
    return f"{tables} tables, {indexes} indexes"


def _artifacts(settings: KeelSettings) -> str:
    from keel.store.artifacts import open_artifact_store

    store = open_artifact_store(settings.resolved_artifact_uri())
    probe = f"keel doctor probe {secrets.token_hex(16)}".encode()
    blob = store.put_bytes(probe)
    try:
        if store.read_bytes(blob.digest, name="doctor probe") != probe:
            raise KeelError("the probe read back differs from what was written")
    finally:
        store.delete(blob.digest)
    return f"{store.url} (wrote, read back and verified a probe)"


def _run(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except (KeelError, SQLAlchemyError, OSError) as exc:
        message = exc.message if isinstance(exc, KeelError) else f"{type(exc).__name__}: {exc}"
        return Check(name, False, " ".join(message.split()))


def _checks(settings: KeelSettings) -> list[Check]:
    from keel.cli._db import unchecked_database

    checks: list[Check] = []
    try:
        with unchecked_database(settings) as db:
            checks.append(_run("metadata store reachable", lambda: _reachable(db)))
            if checks[-1].ok:
                checks.append(_run("schema current", lambda: _schema_current(db)))
                checks.append(_run("tables and indexes present", lambda: _tables_and_indexes(db)))
            else:
                checks += [Check(n, False, "skipped: the store is unreachable") for n in _DB_CHECKS]
    except KeelError as exc:  # the URL itself is unusable (bad scheme, missing driver)
        checks.append(Check("metadata store reachable", False, exc.message))
        checks += [Check(n, False, "skipped: the store is unreachable") for n in _DB_CHECKS]
    checks.append(_run("artifact store writable and readable", lambda: _artifacts(settings)))
    return checks


def doctor(as_json: JsonOption = False) -> None:
    """Check the stores are reachable, the schema current and its tables and indexes present."""
    from keel.config import get_settings

    checks = _checks(get_settings())
    failed = [c for c in checks if not c.ok]
    if as_json:
        print_json(
            {
                "ok": not failed,
                "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
            }
        )
    else:
        table = Table(show_header=False, box=None)
        table.add_column(width=1)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for c in checks:
            mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
            table.add_row(mark, c.name, escape(c.detail))
        out_console().print(table)
    if failed:
        if not as_json:
            err_console().print(f"[bold red]error:[/] {len(failed)} of {len(checks)} checks failed")
        raise typer.Exit(1)
