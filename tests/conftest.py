"""Fixtures shared by the whole suite: a fresh Keel home, and a metadata backend.

``keel_env`` gives a test its own temporary home (``KEEL_HOME``) with the default SQLite
store. ``backend`` does the same but is parametrised over SQLite, PostgreSQL and a live
Keel server over HTTP ("rest"): the
PostgreSQL case gets a brand-new database (created and dropped around the test) on the
server named by ``KEEL_TEST_POSTGRES_URL``, and skips with a one-line reason without it.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

POSTGRES_ENV = "KEEL_TEST_POSTGRES_URL"
# Every test that needs Ray carries this xdist group, so one worker runs them all and
# starts one Ray instance (``ray_cluster``) for them.
RAY_GROUP = "ray"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each ``xdist_group`` test its group's ``@name`` suffix, as xdist means to.

    ``--dist loadgroup`` sends tests to workers by that suffix, which pytest-xdist 3.8
    writes to ``item._nodeid``; pytest 9 keeps the node id in ``item._id``, so no test had
    a group: the browser tests and each module's Ray instance ran on both workers, and
    the demo ran twice. This runs on each worker after xdist's hook (trylast) and writes
    the suffix where pytest 9 reads it; an id that has one already is left alone.
    """
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        names = {
            str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
            for mark in item.iter_markers("xdist_group")
        }
        if names and "@" not in item.nodeid.rpartition("]")[2]:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(sorted(names))}")


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


class _Databases:
    """Keel-schema databases copied from the template ahead of the tests that take them,
    and dropped behind them, by two background threads.

    ``CREATE DATABASE … TEMPLATE`` and ``DROP DATABASE`` are fsync-bound: 0.2-3 s of wall
    time each on a loaded 2-core machine, twice per PostgreSQL test when the test waited
    for both. Now ``AHEAD`` databases are kept ready while tests run and drops never
    queue before them; a test waits only when tests come faster than copies. A failed
    copy is raised in the test that takes it; a failed drop at the end of the session.
    """

    AHEAD = 2

    def __init__(self, admin: str, template: str) -> None:
        self._admin, self._template = admin, template
        self._ready: queue.Queue[tuple[str, str] | BaseException] = queue.Queue()
        self._slots = threading.Semaphore(self.AHEAD)  # databases still to make ahead
        self._closing = threading.Event()
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._failed_drops: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._make, name="keel-test-pg-make", daemon=True),
            threading.Thread(target=self._drop, name="keel-test-pg-drop", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _make(self) -> None:
        while True:
            self._slots.acquire()
            if self._closing.is_set():
                return
            try:
                self._ready.put(create_postgres_database(self._admin, template=self._template))
            except Exception as exc:  # kept: raised in the test that takes it
                self._ready.put(exc)

    def _drop(self) -> None:
        while (name := self._drops.get()) is not None:
            try:
                drop_postgres_database(self._admin, name)
            except Exception as exc:  # kept: raised at the end of the session
                self._failed_drops.append(exc)

    def take(self) -> tuple[str, str]:
        """Return a fresh database's (URL, name); another one is started at once."""
        made = self._ready.get(timeout=600)
        self._slots.release()
        if isinstance(made, BaseException):
            raise made
        return made

    def give_back(self, name: str) -> None:
        """Drop ``name`` in the background (its connections must be closed already)."""
        self._drops.put(name)

    def close(self) -> None:
        """Drop what was made ahead, wait for every drop; raise the first that failed."""
        self._closing.set()
        self._slots.release()  # wakes the maker if it waits for a slot
        self._threads[0].join()
        self._drops.put(None)
        self._threads[1].join()
        while not self._ready.empty():
            made = self._ready.get()
            if not isinstance(made, BaseException):
                drop_postgres_database(self._admin, made[1])
        if self._failed_drops:
            raise self._failed_drops[0]


@pytest.fixture(scope="session")
def postgres_databases(postgres_template: str | None) -> Iterator[_Databases | None]:
    """Yield the session's supply of Keel-schema databases (None without PostgreSQL)."""
    admin = postgres_admin_url()
    if admin is None or postgres_template is None:
        yield None
        return
    databases = _Databases(admin, postgres_template)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def postgres_keel_url(postgres_databases: _Databases | None) -> Iterator[str]:
    """Yield the URL of a new PostgreSQL database already at Keel's schema."""
    if postgres_databases is None:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (make test sets it when 5432 answers)")
    url, name = postgres_databases.take()
    try:
        yield url
    finally:
        _reset()  # closes this process's connections to it before the drop
        postgres_databases.give_back(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file at Keel's current schema, copied into each live server's home.

    A new home creates its schema on first use: 0.25-0.85 s of mostly fsync-bound wall
    time on a loaded 2-core machine, once for every "rest" case of ``backend``.
    """
    from keel.store.database import Database
    from keel.store.migrate import ensure_schema

    path = tmp_path_factory.mktemp("sqlite-template") / "keel.db"
    db = Database(f"sqlite:///{path.as_posix()}")
    try:
        ensure_schema(db)
    finally:
        db.dispose()
    return path


def _copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database with SQLite's backup API (consistent, WAL or not)."""
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


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

        server_home = keel_env.home.parent / "server-home"
        # the server's own store, not the one under test: its schema comes copied
        _copy_sqlite(request.getfixturevalue("sqlite_template"), server_home / "keel.db")
        with running_server(server_home) as url:
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


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """Start one small local Ray instance for the session; yield the ``ray`` module.

    Starting one (GCS, raylet, worker processes) took ~50 s of a loaded 2-core machine,
    and three modules each started their own, on both xdist workers. Its workers import
    what the tests import: ``PYTHONPATH`` is this process's ``sys.path`` once collection
    put every test folder on it.
    """
    ray = pytest.importorskip("ray", reason="the ray tests need the ray extra")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": env},
    )
    try:
        yield ray
    finally:
        ray.shutdown()
