"""Fixtures shared by the whole suite: a fresh Keel home, and a metadata backend.

``keel_env`` gives a test its own temporary home (``KEEL_HOME``) with the default SQLite
store. ``backend`` does the same but is parametrised over SQLite, PostgreSQL and a live
Keel server over HTTP ("rest"): the
PostgreSQL case gets a brand-new database (created and dropped around the test) on the
server named by ``KEEL_TEST_POSTGRES_URL``, and skips with a one-line reason without it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

POSTGRES_ENV = "KEEL_TEST_POSTGRES_URL"


@dataclass(frozen=True)
class KeelEnv:
    """A test's Keel home and the metadata store URL it points at."""

    home: Path
    tracking_uri: str
    dialect: str


def _reset() -> None:
    from keel.config import reset_settings
    from keel.store.artifacts import forget_artifact_stores
    from keel.store.database import forget_databases

    reset_settings()
    forget_databases()
    forget_artifact_stores()
    import keel.stores

    keel.stores._current = None


@pytest.fixture
def keel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeelEnv]:
    """Yield a fresh Keel home with the default SQLite metadata store."""
    home = tmp_path / "keel-home"
    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.delenv("KEEL_TRACKING_URI", raising=False)
    monkeypatch.delenv("KEEL_ARTIFACT_URI", raising=False)
    _reset()
    yield KeelEnv(home, f"sqlite:///{home / 'keel.db'}", "sqlite")
    _end_leftover_runs()
    _reset()


def _close_rest_client() -> None:
    import keel.stores

    if keel.stores._current is not None:
        http = getattr(keel.stores._current[1].tracking, "http", None)
        if http is not None:
            http.close()


def _end_leftover_runs() -> None:
    from keel.tracking import fluent

    for run in list(fluent._open_runs):
        run.end("killed")


def postgres_admin_url() -> str | None:
    """Return the PostgreSQL URL tests may create databases on, or None."""
    return os.environ.get(POSTGRES_ENV) or None


def _psycopg_dsn(url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_postgres_database(url: str, template: str | None = None) -> tuple[str, str]:
    """Create a database beside ``url``'s; return (its SQLAlchemy URL, its name).

    It is empty, or a copy of ``template`` (much faster than building Keel's schema).
    """
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"keel_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(_psycopg_dsn(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    new = make_url(url).set(drivername="postgresql+psycopg", database=name)
    return new.render_as_string(hide_password=False), name


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """Yield the name of a database holding Keel's current schema, to copy per test."""
    admin = postgres_admin_url()
    if admin is None:
        yield None
        return
    from keel.store.database import Database
    from keel.store.migrate import ensure_schema

    url, name = create_postgres_database(admin)
    db = Database(url)
    ensure_schema(db)
    db.dispose()  # a template must have no open connections while it is copied
    try:
        yield name
    finally:
        drop_postgres_database(admin, name)


def drop_postgres_database(url: str, name: str) -> None:
    """Drop a database made by ``create_postgres_database``."""
    import psycopg

    with psycopg.connect(_psycopg_dsn(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Yield the URL of a brand-new, empty PostgreSQL database, dropped afterwards."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (make test sets it when 5432 answers)")
    url, name = create_postgres_database(admin)
    try:
        yield url
    finally:
        _reset()
        drop_postgres_database(admin, name)


@pytest.fixture
def postgres_keel_url(postgres_template: str | None) -> Iterator[str]:
    """Yield the URL of a new PostgreSQL database already at Keel's schema."""
    admin = postgres_admin_url()
    if admin is None or postgres_template is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (make test sets it when 5432 answers)")
    url, name = create_postgres_database(admin, template=postgres_template)
    try:
        yield url
    finally:
        _reset()
        drop_postgres_database(admin, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "rest"])
def backend(
    request: pytest.FixtureRequest, keel_env: KeelEnv, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KeelEnv]:
    """Yield a fresh Keel home whose metadata store is SQLite, PostgreSQL or a live server.

    The "rest" case runs a real Keel server (its own SQLite home) and points
    ``KEEL_TRACKING_URI`` at it, so the same SDK calls go through HTTP.
    """
    if request.param == "sqlite":
        yield keel_env
        return
    if request.param == "rest":
        from tests.live_server import running_server

        with running_server(keel_env.home.parent / "server-home") as url:
            monkeypatch.setenv("KEEL_TRACKING_URI", url)
            _reset()
            yield KeelEnv(keel_env.home, url, "rest")
            _end_leftover_runs()
            _close_rest_client()
            _reset()
        return
    url = request.getfixturevalue("postgres_keel_url")
    monkeypatch.setenv("KEEL_TRACKING_URI", url)
    _reset()
    yield KeelEnv(keel_env.home, url, "postgresql")
    _end_leftover_runs()
