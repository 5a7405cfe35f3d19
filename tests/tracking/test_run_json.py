"""Each run's JSON copies (runs.params_json, metrics_json, tags_json) equal its table rows.

After every kind of write — run creation with tags, params in several batches, metrics
through the buffered flusher at several steps, tags set and overwritten, a refused batch,
stale-run failure, deletion, resumption — the copies on the runs row are compared with
the params, tags and latest_metrics rows of the same database, read directly, on SQLite,
PostgreSQL and through a live server (whose own database is opened here). Floats are
compared bit for bit.
"""

from __future__ import annotations

import math
import random
import struct
import threading
from collections.abc import Iterator

import orjson
import pytest
from sqlalchemy import select
from tests.conftest import KeelEnv

import keel
from keel.errors import Conflict
from keel.store import schema as t
from keel.store.database import Database
from keel.stores import current_stores
from keel.tracking.run_json import load_metrics, metric_fragment, metrics_text

AWKWARD = {
    "nan": math.nan,
    "inf": math.inf,
    "minus_inf": -math.inf,
    "subnormal": 1e-320,
    "smallest": 5e-324,
    "sum": 0.1 + 0.2,
    "largest": 1.7976931348623157e308,
    "huge": 1e300,
    "neg_zero": -0.0,
    "two53_plus_2": 2.0**53 + 2,
    "third": 1 / 3,
    "ünïcødé ключ 名前": -123.456,
    "dots.in.key": 3.5,
    "a/b:c d-e": 4.5,
}
# Keys the SDK and the server refuse, but the SQL store itself takes as they are.
ODD_KEYS = ['quo"te', "it's", "back\\slash", "brace}{,:", "\\u0041", "tab\tnew\nline", "\u2028"]


@pytest.fixture
def database(backend: KeelEnv) -> Iterator[Database]:
    """The database holding the runs: the backend's own, or the live server's."""
    url = backend.tracking_uri
    if backend.dialect == "rest":  # the server's home (tests/conftest.py), default store
        path = backend.home.parent / "server-home" / "keel.db"
        assert path.is_file()
        url = f"sqlite:///{path}"
    db = Database(url)
    yield db
    db.dispose()


def _bits(value: float | str) -> object:
    return value if isinstance(value, str) else struct.pack("<d", value)


def _from_tables(db: Database, run_id: str) -> tuple[dict, dict, dict]:
    """Return the run's (params, tags, latest metrics as value_text) rows."""
    lm = t.latest_metrics
    with db.read() as conn:
        return tuple(  # type: ignore[return-value]
            {key: value for key, value in conn.execute(select(key, value).where(where))}
            for key, value, where in (
                (t.params.c.key, t.params.c.value, t.params.c.run_id == run_id),
                (t.tags.c.key, t.tags.c.value, t.tags.c.run_id == run_id),
                (lm.c.key, lm.c.value_text, lm.c.run_id == run_id),
            )
        )


def assert_copies_match(db: Database, run_id: str) -> dict[str, float]:
    """Fail unless the run's JSON copies hold exactly its rows; return its metrics."""
    params, tags, metrics = _from_tables(db, run_id)
    with db.read() as conn:
        row = conn.execute(
            select(t.runs.c.params_json, t.runs.c.metrics_json, t.runs.c.tags_json).where(
                t.runs.c.run_id == run_id
            )
        ).one()
    assert orjson.loads(row.params_json) == params
    assert orjson.loads(row.tags_json) == tags
    stored = orjson.loads(row.metrics_json)
    # finite values as exact numbers, the other three as the REST API's strings
    expected = orjson.loads(metrics_text({k: metric_fragment(v) for k, v in metrics.items()}))
    assert {k: _bits(v) for k, v in stored.items()} == {k: _bits(v) for k, v in expected.items()}
    for key, text in metrics.items():
        value = load_metrics(row.metrics_json)[key]
        assert repr(value) == text  # the same double, so the same repr
    return load_metrics(row.metrics_json)


def _same_floats(a: dict[str, float], b: dict[str, float]) -> bool:
    return {k: _bits(v) for k, v in a.items()} == {k: _bits(v) for k, v in b.items()}


def test_every_kind_of_write_keeps_the_copies_equal_to_the_tables(database: Database) -> None:
    with keel.start_run(experiment="copies", tags={"team": "a", "ü": "ß"}) as run:
        assert_copies_match(database, run.run_id)
        run.log_params({"p": "v", "quoted": "x\"y\nz\\'", "名前": "値", "a.b.c": ""})
        run.log_params({"p": "v", "later": "1"})  # relogging the same value changes nothing
        run.log_metrics(AWKWARD)
        run.set_tag("team", "b")
        run.set_tags({"new": "1", "json.like": '{"a": [1, "b"]}'})
        run.flush()
        metrics = assert_copies_match(database, run.run_id)
        assert _same_floats(metrics, AWKWARD)
        with pytest.raises(Conflict):
            run.log_params({"p": "changed", "never": "written"})
        run.log_metric("sum", 7.0, step=5)
        run.log_metric("sum", 8.0, step=3)  # an older step: not the latest
        run.log_metric("nan", 1.0, step=1)
        run.log_metric("inf", math.nan, step=1)
    metrics = assert_copies_match(database, run.run_id)
    assert (metrics["sum"], metrics["nan"]) == (7.0, 1.0)
    assert math.isnan(metrics["inf"])
    found = keel.get_run(run.run_id)
    assert "never" not in found.params
    assert found.tags["team"] == "b"
    assert _same_floats(found.metrics, metrics)

    with keel.start_run(run_id=run.run_id) as resumed:  # resumed: the same run, appended
        resumed.log_metric("after", 0.5)
        resumed.log_params({"resumed": "yes"})
    assert_copies_match(database, run.run_id)
    current_stores().tracking.delete_run(run.run_id)
    assert_copies_match(database, run.run_id)
    assert keel.search_runs(experiment="copies") == []


def test_a_run_with_nothing_logged_has_empty_copies(database: Database) -> None:
    with keel.start_run(experiment="copies") as run:
        pass
    params, tags, metrics = _from_tables(database, run.run_id)
    assert_copies_match(database, run.run_id)
    assert params == {}
    assert metrics == {}
    found = keel.get_run(run.run_id)
    assert (found.params, found.metrics) == ({}, {})
    assert found.tags == tags


def test_buffered_metrics_at_many_steps_and_keys_end_as_the_latest(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_METRIC_BUFFER_SIZE", "13")
    monkeypatch.setenv("KEEL_METRIC_FLUSH_INTERVAL", "0.01")
    reset_settings()
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(300)]
    latest: dict[str, tuple[int, float]] = {}
    with keel.start_run(experiment="copies") as run:
        for _ in range(3000):
            key, step = rng.choice(keys), rng.randrange(50)
            (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
            run.log_metric(key, value, step=step)
            if key not in latest or step >= latest[key][0]:
                latest[key] = (step, value)
    metrics = assert_copies_match(database, run.run_id)
    assert _same_floats(metrics, {k: v for k, (_, v) in latest.items()})


def test_a_stale_run_failed_by_gc_has_its_failure_tag_in_the_copy(database: Database) -> None:
    run = keel.start_run(experiment="copies", tags={"keep": "me"})
    tracking = current_stores().tracking
    tracking.heartbeat(run.run_id, run._writer, 1)
    assert keel.gc_runs(timeout=60) == [run.run_id]
    assert_copies_match(database, run.run_id)
    assert keel.get_run(run.run_id).tags == {
        **_from_tables(database, run.run_id)[1],
        "keel.failure": "heartbeat timed out",
    }
    run.end("failed")


def test_searches_return_what_the_tables_hold(database: Database) -> None:
    ids = []
    for i in range(5):
        with keel.start_run(experiment="copies") as run:
            run.log_params({f"p{j}": f"{i}-{j}" for j in range(20)})
            run.log_metrics({**AWKWARD, "order": float(i)})
            ids.append(run.run_id)
    found = keel.search_runs(experiment="copies", order_by=["metrics.order DESC"])
    assert [r.run_id for r in found] == ids[::-1]
    for run in found:
        params, tags, metrics = _from_tables(database, run.run_id)
        assert (run.params, run.tags) == (params, tags)
        assert _same_floats(run.metrics, {k: float(v) for k, v in metrics.items()})


def test_concurrent_writers_to_one_run_lose_no_keys(database: Database) -> None:
    run = keel.start_run(experiment="copies")
    tracking = current_stores().tracking
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for batch in range(5):
                tracking.log_batch(
                    run.run_id,
                    metrics=[(f"w{worker}.m{batch}", worker + batch / 10, 1, 0)],
                    params={f"w{worker}.p{batch}": "v"},
                    tags={f"w{worker}.t": str(batch)},
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    metrics = assert_copies_match(database, run.run_id)
    assert len(metrics) == 30
    params, tags, _ = _from_tables(database, run.run_id)
    assert len(params) == 30
    assert {k: v for k, v in tags.items() if k.startswith("w")} == {
        f"w{w}.t": "4" for w in range(6)
    }
    run.end()


def test_random_doubles_round_trip_through_the_copy_bit_for_bit(database: Database) -> None:
    rng = random.Random(20261201)
    values: dict[str, float] = {}
    while len(values) < 400:
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        values[f"r{len(values)}"] = value  # NaN payloads and infinities included
    with keel.start_run(experiment="copies") as run:
        run.log_metrics(values)
    metrics = assert_copies_match(database, run.run_id)
    for key, value in values.items():
        if math.isnan(value):
            assert math.isnan(metrics[key])
        else:
            assert _bits(metrics[key]) == _bits(value), key


def test_the_copy_helpers_write_what_json_parsers_read_back() -> None:
    fragments = {k: metric_fragment(repr(v)) for k, v in AWKWARD.items()}
    text = metrics_text(fragments)
    loaded = load_metrics(text)
    assert _same_floats(
        {k: v for k, v in loaded.items() if not math.isnan(v)},
        {k: v for k, v in AWKWARD.items() if not math.isnan(v)},
    )
    assert math.isnan(loaded["nan"])
    assert orjson.loads(text)["inf"] == "Infinity"
    assert metrics_text({}) == "{}"


def test_keys_json_must_escape_are_copied_exactly_by_the_sql_store(database: Database) -> None:
    tracking = current_stores().tracking
    if not hasattr(tracking, "db"):
        pytest.skip("the server refuses these keys (tested in tests/server)")
    run = tracking.create_run(
        tracking.create_experiment("odd").experiment_id,
        name="odd",
        user="u",
        start_time=1,
        tags={k: k for k in ODD_KEYS},
    )
    tracking.log_batch(
        run.run_id,
        metrics=[(k, float(i) / 7, 1, 0) for i, k in enumerate(ODD_KEYS)],
        params={k: f"value of {k}" for k in ODD_KEYS},
    )
    assert_copies_match(database, run.run_id)
    found = tracking.get_run(run.run_id)
    assert found.params == {k: f"value of {k}" for k in ODD_KEYS}
    assert found.tags == {k: k for k in ODD_KEYS}
    assert found.metrics == {k: float(i) / 7 for i, k in enumerate(ODD_KEYS)}


def test_batched_run_writes_keep_the_copies_equal_to_the_tables(database: Database) -> None:
    from keel.tracking.entities import RunStatus
    from keel.tracking.run_writes import RunWrite, new_run_id

    tracking = current_stores().tracking
    exp = tracking.create_experiment("copies").experiment_id
    old = tracking.create_run(exp, name="old", user="u", start_time=1, tags={"a": "1"})
    tracking.log_batch(old.run_id, params={"p": "1"}, metrics=[("m", 0.1 + 0.2, 1, 0)])
    new, partial = new_run_id(), new_run_id()
    tracking.write_runs(
        [
            RunWrite(
                new, exp, name="n", user="u", start_time=2,
                params={"名前": "値", "quoted": "x\"y\nz\\'"},
                tags={"ü": "ß", "json.like": '{"a": [1, "b"]}'},
                status=RunStatus.FINISHED, end_time=3,
            ),
            RunWrite(partial, exp, name="p", user="u", start_time=2, tags={"t": "1"}),
            RunWrite(old.run_id, params={"p": "1", "later": "2"}, tags={"a": "2", "b": "3"}),
        ]
    )  # fmt: skip
    for run_id in (new, partial):
        assert_copies_match(database, run_id)
    assert _same_floats(assert_copies_match(database, old.run_id), {"m": 0.1 + 0.2})
    tracking.write_runs(
        [RunWrite(partial, params={"k": "v"}, tags={"t": "2"}, status=RunStatus.KILLED, end_time=5)]
    )
    assert_copies_match(database, partial)
    assert keel.get_run(partial).tags == {"t": "2"}
    assert keel.get_run(old.run_id).params == {"p": "1", "later": "2"}
    assert keel.get_run(new).params == {"名前": "値", "quoted": "x\"y\nz\\'"}
