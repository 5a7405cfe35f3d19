"""Schema creation, checks and upgrades of the metadata database, on both dialects."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from keel.errors import InvalidInput, SchemaOutOfDate, SchemaTooNew
from keel.store import schema
from keel.store.database import Database
from keel.store.migrate import (
    alembic_config,
    ensure_schema,
    run_alembic_upgrade,
    schema_status,
    upgrade,
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return request.getfixturevalue("postgres_url")


def _schema_diff(db: Database) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [
            d
            for d in compare_metadata(context, schema.metadata)
            if not (d[0] == "remove_table" and d[1].name == "alembic_version")
        ]


def test_a_new_database_is_created_at_the_current_schema(empty_url: str) -> None:
    db = Database(empty_url)
    ensure_schema(db)
    status = schema_status(db)
    assert status.is_current
    assert status.revision == schema.HEAD_REVISION
    assert _schema_diff(db) == []
    db.dispose()


def test_the_migrations_build_exactly_the_declared_schema(empty_url: str) -> None:
    db = Database(empty_url)
    run_alembic_upgrade(db, "head")
    assert _schema_diff(db) == []
    db.dispose()


def test_the_revision_list_matches_the_alembic_scripts() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config(Database("sqlite://")))
    ordered = [rev.revision for rev in reversed(list(scripts.walk_revisions()))]
    assert tuple(ordered) == schema.REVISIONS
    assert scripts.get_current_head() == schema.HEAD_REVISION


@pytest.mark.parametrize("start", schema.REVISIONS[:-1])
def test_every_earlier_revision_upgrades_to_head_keeping_data(empty_url: str, start: str) -> None:
    db = Database(empty_url)
    run_alembic_upgrade(db, start)
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, lifecycle_stage, created_at,"
                " updated_at) VALUES (:i, 'kept', 'active', 1, 1)"
            ),
            {"i": "a" * 32},
        )
    with pytest.raises(SchemaOutOfDate, match=r"keel db upgrade"):
        ensure_schema(db)

    before, after, backup = upgrade(db)
    assert (before, after) == (start, schema.HEAD_REVISION)
    if db.dialect == "sqlite":
        assert backup is not None
        assert backup.is_file()
    else:
        assert backup is None
    ensure_schema(db)  # now current: no error
    assert _schema_diff(db) == []
    with db.read() as conn:
        assert conn.execute(text("SELECT name FROM experiments")).scalar() == "kept"
    db.dispose()


def test_the_sqlite_backup_is_a_consistent_copy(tmp_path: Path) -> None:
    import sqlite3

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    db = Database(url)
    run_alembic_upgrade(db, schema.REVISIONS[0])
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, lifecycle_stage, created_at,"
                " updated_at) VALUES (:i, 'kept', 'active', 1, 1)"
            ),
            {"i": "b" * 32},
        )
    _, _, backup = upgrade(db)
    db.dispose()
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT name FROM experiments").fetchone() == ("kept",)
        revision = copy.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision == (schema.REVISIONS[0],)


def test_a_database_from_a_newer_keel_is_refused_naming_both_versions(empty_url: str) -> None:
    db = Database(empty_url)
    ensure_schema(db)
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
        conn.execute(text("UPDATE keel_meta SET value = '9.9.0' WHERE key = 'written_by'"))
    with pytest.raises(SchemaTooNew) as caught:
        ensure_schema(db)
    message = str(caught.value)
    assert "0099" in message
    assert "Keel 9.9.0" in message
    assert schema.HEAD_REVISION in message
    with pytest.raises(SchemaTooNew):
        upgrade(db)
    db.dispose()


def test_a_foreign_database_is_not_touched(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'other.db'}")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE runs (id INTEGER)"))
    with pytest.raises(InvalidInput, match="not created by Keel"):
        ensure_schema(db)
    db.dispose()


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}", busy_timeout=12.5)
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 12500
    db.dispose()


@pytest.mark.parametrize(
    "url",
    ["", "nonsense", "mysql://root@localhost/x", "oracle://u@h/db"],
)
def test_unsupported_database_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        Database(url)


def test_every_declared_index_exists_after_creation(empty_url: str) -> None:
    db = Database(empty_url)
    ensure_schema(db)
    inspector = inspect(db.engine)
    for table in schema.metadata.sorted_tables:
        present = {ix["name"] for ix in inspector.get_indexes(table.name)}
        assert {ix.name for ix in table.indexes} <= present, table.name
    db.dispose()


_RUN_ID = "c" * 32
_EMPTY_RUN_ID = "d" * 32
_PARAMS = {"p": "v", 'quo"te.d': "x'y\"z\\", "ünï": "ß\n\t", "": "empty key"}
_TAGS = {"team": "a", "keel.note": '{"not": "json"}'}
# value_text as the store writes it: Python's repr of the float
_METRICS = {
    "nan": math.nan,
    "inf": math.inf,
    "ninf": -math.inf,
    "sum": 0.1 + 0.2,
    "tiny": 1e-320,
    "big": 1.7976931348623157e308,
    "neg0": -0.0,
    "int": 3.0,
    'k"ey': 1e16,
}


def _insert_run_rows(db: Database) -> None:
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO experiments (experiment_id, name, lifecycle_stage, created_at,"
                " updated_at) VALUES (:i, 'kept', 'active', 1, 1)"
            ),
            {"i": "a" * 32},
        )
        for run_id in (_RUN_ID, _EMPTY_RUN_ID):
            conn.execute(
                text(
                    'INSERT INTO runs (run_id, experiment_id, name, status, start_time, "user",'
                    " lifecycle_stage) VALUES (:r, :e, 'r', 'finished', 1, 'u', 'active')"
                ),
                {"r": run_id, "e": "a" * 32},
            )
        for table, values in (("params", _PARAMS), ("tags", _TAGS)):
            conn.execute(
                text(f"INSERT INTO {table} (run_id, key, value) VALUES (:r, :k, :v)"),
                [{"r": _RUN_ID, "k": k, "v": v} for k, v in values.items()],
            )
        conn.execute(
            text(
                "INSERT INTO latest_metrics (run_id, key, value, value_text, timestamp, step,"
                " is_nan) VALUES (:r, :k, :v, :t, 1, 0, :n)"
            ),
            [
                {
                    "r": _RUN_ID,
                    "k": k,
                    "v": 0.0 if math.isnan(v) else v,
                    "t": repr(v),
                    "n": math.isnan(v),
                }
                for k, v in _METRICS.items()
            ],
        )


def test_the_run_json_columns_are_backfilled_exactly(empty_url: str) -> None:
    import orjson

    db = Database(empty_url)
    run_alembic_upgrade(db, "0005")
    _insert_run_rows(db)
    upgrade(db)
    with db.read() as conn:
        rows = {
            r.run_id: r
            for r in conn.execute(
                text("SELECT run_id, params_json, metrics_json, tags_json FROM runs")
            )
        }
    db.dispose()
    full, empty = rows[_RUN_ID], rows[_EMPTY_RUN_ID]
    assert (empty.params_json, empty.metrics_json, empty.tags_json) == ("{}", "{}", "{}")
    assert orjson.loads(full.params_json) == _PARAMS
    assert orjson.loads(full.tags_json) == _TAGS
    metrics = orjson.loads(full.metrics_json)
    assert metrics.pop("nan") == "NaN"
    assert metrics.pop("inf") == "Infinity"
    assert metrics.pop("ninf") == "-Infinity"
    expected = {k: v for k, v in _METRICS.items() if math.isfinite(v)}
    # bit for bit, so -0.0 and the subnormal count
    assert {k: struct.pack("<d", v) for k, v in metrics.items()} == {
        k: struct.pack("<d", v) for k, v in expected.items()
    }
