"""``TrackingStore.ping``: one round trip to the metadata store, on every backend; the
server's ``/health`` rests on it, so an unreachable store must raise ``StoreUnavailable``."""

from __future__ import annotations

import socket

import pytest

from keel.client.http import KeelHttp
from keel.client.tracking import RestTrackingStore
from keel.errors import StoreUnavailable
from keel.store.database import Database
from keel.stores import current_stores
from keel.tracking.sql_store import SqlTrackingStore


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: a connection is refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.usefixtures("backend")
def test_ping_answers_on_every_backend() -> None:
    assert current_stores().tracking.ping() is None


def test_ping_of_an_unreachable_database_is_store_unavailable() -> None:
    db = Database(f"postgresql+psycopg://keel@127.0.0.1:{_closed_port()}/test")
    try:
        with pytest.raises(StoreUnavailable, match="unavailable"):
            SqlTrackingStore(db).ping()
    finally:
        db.dispose()


def test_ping_of_an_unreachable_server_is_store_unavailable() -> None:
    store = RestTrackingStore(KeelHttp(f"http://127.0.0.1:{_closed_port()}", timeout=5))
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.ping()
