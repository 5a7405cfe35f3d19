"""``TrackingStore.ping``: one round trip to the metadata store, on every backend; the
server's ``/health`` rests on it, so an unreachable store must raise ``StoreUnavailable``."""

from __future__ import annotations

import pytest
from tests.live_server import free_port  # nothing listens there: connections are refused

from keel.client.http import KeelHttp
from keel.client.tracking import RestTrackingStore
from keel.errors import StoreUnavailable
from keel.store.database import Database
from keel.stores import current_stores
from keel.tracking.sql_store import SqlTrackingStore


@pytest.mark.usefixtures("backend")
def test_ping_answers_on_every_backend() -> None:
    assert current_stores().tracking.ping() is None


def test_ping_of_an_unreachable_database_is_store_unavailable() -> None:
    db = Database(f"postgresql+psycopg://keel@127.0.0.1:{free_port()}/test")
    try:
        with pytest.raises(StoreUnavailable, match="unavailable"):
            SqlTrackingStore(db).ping()
    finally:
        db.dispose()


def test_ping_of_an_unreachable_server_is_store_unavailable() -> None:
    store = RestTrackingStore(KeelHttp(f"http://127.0.0.1:{free_port()}", timeout=5))
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.ping()
