"""A search ordered by a metric first returns the same page by either plan, on both dialects.

``keel.tracking.sql_search_metric`` walks latest_metrics' (key, value) index and stops when
the page is full; ``build_search``'s general query sorts every run. Over a few hundred runs
with random values (NaN, ±inf, -0.0, ties, missing metrics, histories whose latest point is
NaN, deleted runs, start-time ties, runs of other experiments holding the same keys), random
filters, orders, page sizes and offsets must give identical rows, and the documented order,
checked by a brute-force sort in Python.
"""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from keel.errors import InvalidInput
from keel.store.database import Database
from keel.store.migrate import ensure_schema
from keel.tracking.search import encode_page_token
from keel.tracking.sql_search_metric import metric_order_plan
from keel.tracking.sql_store import SqlTrackingStore

SEED = 20261201
RUNS = 260

FILTERS = [
    None,
    "metrics.a > 0.3",
    "metrics.a <= 0.5",
    "metrics.b = 1",
    "metrics.a != 1",
    "metrics.c is null",
    "metrics.a is not null",
    "metrics.a in (0, 1, 0.5)",
    "params.p = 'x'",
    "params.p = 'x' or metrics.b > 0",
    "metrics.b > 0 and tags.t = 'k'",
    "attributes.start_time > 8",
    "metrics.a > 100",
    "metrics.a < 0.9 and metrics.b >= 1",
    # conditions on the order's metric bound the walk, and leave no tail
    "metrics.a >= 0 and params.p = 'x'",
    "metrics.b < 2 and metrics.b >= 0",
    "(metrics.a > 0.2 and metrics.b > 0) and params.p != 'z'",
    "metrics.c is not null",
    "metrics.a = 0",
    "metrics.a != 0.5 and metrics.b <= 1",
    "metrics.a > 1e400",
    "metrics.b > 0 or metrics.a < 0.5",
    # the walk reads a run's id from its index entry: conditions on the id itself too
    "attributes.run_id like '%a%' or params.p = 'y'",
    "attributes.run_id != 'x' and metrics.b is null",
]
SECOND_KEYS: list[list[str]] = [
    [],
    ["metrics.b DESC"],
    ["params.p"],
    ["attributes.name DESC"],
    ["attributes.start_time"],
    ["metrics.a", "tags.t DESC"],
]


@dataclass
class Data:
    """The store and, per run, what a brute-force search needs."""

    store: SqlTrackingStore
    experiments: list[str]
    runs: list[dict[str, Any]]


def _value(rng: random.Random, ties: list[float]) -> float | None:
    roll = rng.random()
    if roll < 0.15:
        return None  # missing
    if roll < 0.22:
        return math.nan
    if roll < 0.26:
        return rng.choice([math.inf, -math.inf])
    if roll < 0.55:
        return rng.choice(ties)
    return rng.random()


def _fill(store: SqlTrackingStore, rng: random.Random) -> Data:
    experiments = [store.create_experiment(name).experiment_id for name in ("e1", "e2", "e3")]
    runs = []
    for i in range(RUNS):
        experiment = experiments[0] if i % 3 else rng.choice(experiments)
        # Start times from a narrow range: many ties, broken by run_id.
        run = store.create_run(
            experiment, name=f"run-{i:03d}", user="u", start_time=rng.randint(0, 15)
        )
        values = {
            "a": _value(rng, [0.0, -0.0, 0.5, 1.0]),
            "b": _value(rng, [0.0, 1.0, 2.0]),
            "c": rng.random() if rng.random() < 0.1 else None,
        }
        rows = [(k, v, 1000 + i, 1) for k, v in values.items() if v is not None]
        if rng.random() < 0.2 and values["a"] is not None:  # an older point, not the latest
            rows.append(("a", rng.random(), 2000 + i, 0))
        if rng.random() < 0.1 and values["a"] is not None and not math.isnan(values["a"]):
            # A latest point that is NaN, over an earlier number: "a" counts as missing.
            rows.append(("a", math.nan, 3000 + i, 2))
            values["a"] = math.nan
        param = rng.choice(["x", "y", "z", None])
        tag = rng.choice(["k", "l", None])
        store.log_batch(
            run.run_id,
            metrics=rows,
            params={} if param is None else {"p": param},
            tags={} if tag is None else {"t": tag},
        )
        deleted = rng.random() < 0.1
        if deleted:
            store.delete_run(run.run_id)
        runs.append(
            {
                "run_id": run.run_id,
                "experiment_id": experiment,
                "name": run.name,
                "start_time": run.start_time,
                "deleted": deleted,
                "metrics": {k: v for k, v in values.items() if v is not None},
                "p": param,
            }
        )
    return Data(store, experiments, runs)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def data(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Data]:
    """Random runs in a SQLite or PostgreSQL store at the current schema."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'search.db'}")
        ensure_schema(db)
    else:
        db = Database(request.getfixturevalue("postgres_keel_url"))
    try:
        yield _fill(SqlTrackingStore(db), random.Random(SEED))
    finally:
        db.dispose()


def _page(data: Data, plan: str, ids: list[str], filter_text: str | None, order: list[str],
          size: int, offset: int, *, as_json: bool = False) -> list[Any]:  # fmt: skip
    token = encode_page_token(offset) if offset else None
    rows, _ = data.store._page(ids, filter_text, order, size, token, as_json=as_json, plan=plan)
    # The walk's JSON comes as UTF-8 bytes, the general query's as str.
    return [tuple(v.decode() if type(v) is bytes else v for v in row) for row in rows]


def test_random_searches_return_the_same_rows_by_either_plan(data: Data) -> None:
    rng = random.Random(SEED + 1)
    for _ in range(160):
        ids = rng.choice([data.experiments[:1], data.experiments[:2], data.experiments[1:]])
        filter_text = rng.choice(FILTERS)
        first = f"metrics.{rng.choice('abcd')} {rng.choice(['ASC', 'DESC', ''])}".strip()
        order = [first, *rng.choice(SECOND_KEYS)]
        size = rng.choice([1, 2, 3, 7, 20, 50, 1000])
        offset = rng.choice([0, 0, 1, 5, rng.randint(0, RUNS + 10)])
        general = _page(data, "general", ids, filter_text, order, size, offset)
        walked = _page(data, "metric", ids, filter_text, order, size, offset)
        assert walked == general, (ids, filter_text, order, size, offset)
        assert _page(data, "auto", ids, filter_text, order, size, offset) == general


def test_the_json_body_is_the_same_by_either_plan(data: Data) -> None:
    ids = data.experiments[:2]
    # metrics.c is on few runs: from offset 40 on the page is past them all (the tail).
    for order in (["metrics.a DESC"], ["metrics.b", "params.p DESC"], ["metrics.c DESC"]):
        for offset in (0, 3, 40, 150):
            general = _page(data, "general", ids, "metrics.b >= 0", order, 40, offset, as_json=True)
            walked = _page(data, "metric", ids, "metrics.b >= 0", order, 40, offset, as_json=True)
            assert walked == general


def _body(page: Any) -> dict[str, Any]:
    found = {"runs": [r.to_dict() for r in page], "next_page_token": page.next_page_token}
    return orjson.loads(orjson.dumps(found))


def test_the_server_body_is_the_page_of_runs_it_stands_for(data: Data) -> None:
    ids = data.experiments[:2]
    for order in (["metrics.a DESC"], ["metrics.c"]):
        for size in (1, 2, 30, 1000):
            for token in (None, encode_page_token(5)):
                page = data.store.search_runs(ids, order_by=order, max_results=size,
                                              page_token=token)  # fmt: skip
                body = data.store.search_runs_json(ids, order_by=order, max_results=size,
                                                   page_token=token)  # fmt: skip
                assert orjson.loads(body) == _body(page)
    empty = data.store.search_runs_json(ids, filter="metrics.a > 1e400", order_by=["metrics.a"])
    assert orjson.loads(empty) == {"runs": [], "next_page_token": None}


def _brute_force(
    data: Data, ids: list[str], keep: Callable[[dict[str, Any]], bool], key: str, ascending: bool
) -> list[str]:
    """Return run ids in the documented order: the metric (NaN or missing last), then
    start_time DESC, then run_id."""

    def sort_key(run: dict[str, Any]) -> tuple[Any, ...]:
        value = run["metrics"].get(key)
        missing = value is None or math.isnan(value)
        number = 0.0 if missing else (value if ascending else -value)
        return (missing, number, -run["start_time"], run["run_id"])

    found = [r for r in data.runs if r["experiment_id"] in ids and not r["deleted"] and keep(r)]
    return [r["run_id"] for r in sorted(found, key=sort_key)]


BRUTE_FILTERS: list[tuple[str | None, Callable[[dict[str, Any]], bool]]] = [
    (None, lambda r: True),
    ("params.p = 'x'", lambda r: r["p"] == "x"),
    ("metrics.b > 0", lambda r: r["metrics"].get("b", math.nan) > 0),
]


def test_pages_follow_the_documented_order(data: Data) -> None:
    ids = data.experiments[:2]
    for filter_text, keep in BRUTE_FILTERS:
        for key, ascending in (("a", True), ("a", False), ("c", True), ("c", False)):
            want = _brute_force(data, ids, keep, key, ascending)
            order = [f"metrics.{key} {'ASC' if ascending else 'DESC'}"]
            got: list[str] = []
            token = None
            while True:  # every page, chained by page tokens (the walk picks itself)
                page = data.store.search_runs(ids, filter=filter_text, order_by=order,
                                              max_results=17, page_token=token)  # fmt: skip
                got += [run.run_id for run in page]
                token = page.next_page_token
                if token is None:
                    break
            assert got == want, (filter_text, key, ascending)
            rows = _page(data, "metric", ids, filter_text, order, 1000, 0)
            assert [row[0] for row in rows] == want


def test_only_a_metric_as_first_key_has_a_plan() -> None:
    assert metric_order_plan("sqlite", ("e",), None, ("metrics.m DESC",), False) is not None
    for order in ((), ("params.p",), ("attributes.start_time", "metrics.m"), None):
        assert metric_order_plan("sqlite", ("e",), None, order, False) is None


def test_bad_arguments_are_refused_before_any_plan(data: Data) -> None:
    ids = data.experiments[:1]
    with pytest.raises(InvalidInput, match="max_results"):
        data.store.search_runs(ids, order_by=["metrics.a"], max_results=0)
    with pytest.raises(InvalidInput, match="page token"):
        data.store.search_runs(ids, order_by=["metrics.a"], page_token="not-a-token")
    with pytest.raises(InvalidInput):
        data.store.search_runs(ids, filter="metrics.a >", order_by=["metrics.a"])
    with pytest.raises(InvalidInput):
        data.store.search_runs(ids, order_by=["metrics.`a DESC"])
    for offset in (2**62 + 1, 2**63, 2**64 - 1, 2**70):  # forged: past what SQL binds
        token = base64.urlsafe_b64encode(b'{"offset": %d}' % offset).decode()
        for order in (["metrics.a"], None):
            with pytest.raises(InvalidInput, match="page token"):
                data.store.search_runs(ids, order_by=order, page_token=token)
    far = data.store.search_runs(ids, order_by=["metrics.a"], page_token=encode_page_token(2**62))
    assert len(far) == 0
    huge = "metrics." + "k" * 20_000
    with pytest.raises(InvalidInput):
        data.store.search_runs(ids, order_by=[huge])
    # A hostile key is only ever a bound value: it matches nothing and harms nothing.
    hostile = "metrics.`a'; DROP TABLE runs; --` DESC"
    page = data.store.search_runs(ids, order_by=[hostile], max_results=5)
    assert len(page) == 5
    assert len(data.store.search_runs(ids, max_results=1000)) > 5


def test_a_page_that_ends_inside_a_group_of_equal_values_is_exact(tmp_path: Path) -> None:
    # The walk reads the index's order and breaks ties itself; when a tie crosses the
    # page's end it reads the page sorted by the database instead. Both must agree.
    db = Database(f"sqlite:///{tmp_path / 'ties.db'}")
    ensure_schema(db)
    store = SqlTrackingStore(db)
    experiment = store.create_experiment("ties").experiment_id
    runs = []
    for i, (value, start) in enumerate([(1.0, 5), (1.0, 5), (2.0, 3), (1.0, 9), (1.0, 1),
                                        (0.5, 9), (1.0, 9), (2.0, 3)]):  # fmt: skip
        run = store.create_run(experiment, name=f"r{i}", user="u", start_time=start)
        store.log_batch(run.run_id, metrics=[("m", value, 0, 0)])
        runs.append((-value, -start, run.run_id))
    want = [run_id for *_, run_id in sorted(runs)]
    for size in range(1, len(runs) + 1):
        for offset in range(len(runs)):
            token = encode_page_token(offset) if offset else None
            rows, _ = store._page([experiment], None, ["metrics.m DESC"], size, token,
                                  as_json=False, plan="metric")  # fmt: skip
            assert [row[0] for row in rows] == want[offset : offset + size + 1], (size, offset)
    db.dispose()
