"""The server's search body, built by the database, equals the page of ``Run``s it stands for.

``SqlTrackingStore.search_runs_json`` is what ``POST /api/v1/runs/search`` sends; the
REST tests run their server on SQLite only, so both dialects are compared here.
"""

from __future__ import annotations

import math

import orjson
import pytest

import keel
from keel.stores import current_stores

pytestmark = pytest.mark.usefixtures("backend")


def _body(page: list, token: str | None) -> dict:
    return orjson.loads(
        orjson.dumps({"runs": [r.to_dict() for r in page], "next_page_token": token})
    )


def test_the_json_body_is_the_runs_to_dict_on_every_sql_dialect() -> None:
    tracking = current_stores().tracking
    if not hasattr(tracking, "search_runs_json"):
        pytest.skip("a REST store: the server builds the body")
    with keel.start_run(experiment="j", run_name='odd "name" ünï \\ \t') as run:
        run.log_params({"p": "v", "a b/c:d": 'x"y\nz', "ü": "ß"})
        run.log_metrics({"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "x": 0.1})
        run.log_metrics({"tiny": 5e-324, "big": 1.7976931348623157e308, "neg0": -0.0})
        run.set_tag("team", "a")
    with keel.start_run(experiment="j", run_name="bare"):
        pass
    with keel.start_run(experiment="j", run_name="m") as other:
        other.log_metric("x", 2.0)
    eid = keel.get_experiment("j").experiment_id
    tracking.delete_run(other.run_id)
    for order in (None, ["metrics.x DESC"], ["params.p"]):
        for size in (1, 2, 1000):
            page = tracking.search_runs([eid], order_by=order, max_results=size)
            got = orjson.loads(tracking.search_runs_json([eid], order_by=order, max_results=size))
            assert got == _body(page, page.next_page_token)
            assert [r["run_id"] for r in got["runs"]] == [r.run_id for r in page]
    got = orjson.loads(tracking.search_runs_json([eid], filter="metrics.x > 0"))
    (found,) = got["runs"]
    assert found["metrics"]["nan"] == "NaN"
    assert found["metrics"]["inf"] == "Infinity"
    assert found["metrics"]["ninf"] == "-Infinity"
    assert found["metrics"]["tiny"] == 5e-324
    assert math.copysign(1.0, found["metrics"]["neg0"]) == -1.0
    assert found["params"] == {"p": "v", "a b/c:d": 'x"y\nz', "ü": "ß"}
    assert got["next_page_token"] is None


def test_git_dirty_travels_as_a_json_boolean_or_null() -> None:
    tracking = current_stores().tracking
    if not hasattr(tracking, "search_runs_json"):
        pytest.skip("a REST store: the server builds the body")
    eid = tracking.create_experiment("g").experiment_id
    for dirty in (True, False, None):
        tracking.create_run(eid, name=str(dirty), user="u", start_time=1, git_dirty=dirty)
    got = orjson.loads(tracking.search_runs_json([eid], order_by=["attributes.name"]))
    assert [(r["name"], r["git_dirty"]) for r in got["runs"]] == [
        ("False", False),
        ("None", None),
        ("True", True),
    ]
    page = tracking.search_runs([eid], order_by=["attributes.name"])
    assert got == _body(page, page.next_page_token)
