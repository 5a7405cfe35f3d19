"""Leases: one holder per name until it expires, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from keel.errors import InvalidInput
from keel.store.database import Database
from keel.store.leases import acquire_lease, lease_holder, new_holder_id, release_lease
from keel.store.migrate import ensure_schema


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    url = (
        f"sqlite:///{tmp_path / 'meta.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_keel_url")
    )
    database = Database(url)
    ensure_schema(database)
    yield database
    database.dispose()


def test_a_lease_has_one_holder_until_it_is_released(db: Database) -> None:
    assert acquire_lease(db, "job:alerts", "server-a", ttl_s=30)
    assert not acquire_lease(db, "job:alerts", "server-b", ttl_s=30)
    assert acquire_lease(db, "job:alerts", "server-a", ttl_s=30)  # renewed by its holder
    assert lease_holder(db, "job:alerts").holder == "server-a"

    release_lease(db, "job:alerts", "server-b")  # not its lease: nothing happens
    assert lease_holder(db, "job:alerts").holder == "server-a"
    release_lease(db, "job:alerts", "server-a")
    assert lease_holder(db, "job:alerts") is None
    assert acquire_lease(db, "job:alerts", "server-b", ttl_s=30)


def test_an_expired_lease_is_taken_over(db: Database) -> None:
    assert acquire_lease(db, "job:x", "dead-server", ttl_s=0.05)
    time.sleep(0.1)
    assert lease_holder(db, "job:x") is None
    assert acquire_lease(db, "job:x", "live-server", ttl_s=30)
    assert not acquire_lease(db, "job:x", "dead-server", ttl_s=30)


def test_racing_holders_get_the_lease_exactly_once(db: Database) -> None:
    holders = [new_holder_id() for _ in range(8)]
    won: list[str] = []
    barrier = threading.Barrier(len(holders))

    def race(holder: str) -> None:
        barrier.wait()
        if acquire_lease(db, "job:race", holder, ttl_s=30):
            won.append(holder)

    threads = [threading.Thread(target=race, args=(h,)) for h in holders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert lease_holder(db, "job:race").holder == won[0]


@pytest.mark.parametrize(("name", "ttl"), [("", 1.0), ("x" * 201, 1.0), ("ok", 0), ("ok", -1)])
def test_bad_lease_arguments_are_refused(db: Database, name: str, ttl: float) -> None:
    with pytest.raises(InvalidInput):
        acquire_lease(db, name, "h", ttl_s=ttl)
