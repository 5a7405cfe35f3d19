"""keel.search_runs by experiment names (or ids): the same runs and errors on every backend,
and through a server one request (the server resolves the names)."""

from __future__ import annotations

from typing import Any

import pytest

import keel
from keel.errors import InvalidInput, NotFound
from keel.stores import current_stores

pytestmark = pytest.mark.usefixtures("backend")


def _runs(experiment: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        with keel.start_run(experiment=experiment) as run:
            keel.log_metric("m", float(i))
        ids.append(run.run_id)
    return ids


def test_search_by_names_and_ids_finds_the_same_runs() -> None:
    a = _runs("by-name-a", 2)
    b = _runs("by-name-b", 1)
    eid_b = keel.get_experiment("by-name-b").experiment_id
    order = ["metrics.m DESC"]
    assert [r.run_id for r in keel.search_runs("by-name-a", order_by=order)] == a[::-1]
    both = keel.search_runs(["by-name-a", eid_b], filter="metrics.m < 1", order_by=order)
    assert sorted(r.run_id for r in both) == sorted([a[0], b[0]])
    page = keel.search_runs("by-name-a", order_by=order, max_results=1)
    rest = keel.search_runs("by-name-a", order_by=order, page_token=page.next_page_token)
    assert [r.run_id for r in page + rest] == a[::-1]


def test_an_unknown_name_is_not_found_and_a_bad_one_invalid() -> None:
    _runs("by-name-known", 1)
    with pytest.raises(NotFound, match="no experiment named 'nope'"):
        keel.search_runs(["by-name-known", "nope"])
    with pytest.raises(InvalidInput):
        keel.search_runs("")


def test_through_a_server_a_search_by_name_is_one_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = _runs("by-name-one", 2)
    tracking = current_stores().tracking
    http = getattr(tracking, "http", None)
    if http is None:
        pytest.skip("not a REST store")
    sent: list[str] = []
    request = http.request

    def counted(method: str, path: str, **kwargs: Any) -> Any:
        sent.append(path)
        return request(method, path, **kwargs)

    monkeypatch.setattr(http, "request", counted)
    found = keel.search_runs("by-name-one", order_by=["metrics.m ASC"])
    assert [r.run_id for r in found] == ids
    assert sent == ["/api/v1/runs/search"]
