"""The studies store on every backend (SQLite, PostgreSQL, a live server): one suite.

Concurrent appends from several threads get consecutive numbers, each entry once; bad,
empty, huge and hostile input is an ``InvalidInput``; a corrupt stored entry is an
``IntegrityError`` naming the study and the entry.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from keel.errors import IntegrityError, InvalidInput, NotFound
from keel.hpo.store import MAX_LOGS_PER_APPEND, StudyStore


def _store() -> StudyStore:
    from keel.stores import current_stores

    return current_stores().hpo


def test_appends_are_numbered_and_read_back_from_any_position(backend: Any) -> None:
    store = _store()
    assert store.read_logs("fresh", 0) == []
    assert store.append_logs("s", [{"op_code": 0, "a": 1}, {"op_code": 4}]) == 0
    assert store.append_logs("s", [{"op_code": 5, "x": [1.5, "é"]}]) == 2
    everything = [{"op_code": 0, "a": 1}, {"op_code": 4}, {"op_code": 5, "x": [1.5, "é"]}]
    assert store.read_logs("s", 0) == everything
    assert store.read_logs("s", 2) == [{"op_code": 5, "x": [1.5, "é"]}]
    assert store.read_logs("s", 3) == []
    assert store.read_logs("s", 1, limit=1) == [{"op_code": 4}]
    info = store.get_study("s")
    assert (info.name, info.log_count) == ("s", 3)
    assert info.created_at <= info.updated_at
    store.append_logs("a-study.2", [{"op_code": 0}])
    assert [s.name for s in store.list_studies()] == ["a-study.2", "s"]
    with pytest.raises(NotFound, match="'nope'"):
        store.get_study("nope")


def test_concurrent_appends_get_consecutive_numbers_each_once(backend: Any) -> None:
    store = _store()
    threads, per_thread, errors = 4, 15, []

    def append(worker: int) -> None:
        try:
            for i in range(per_thread):
                batch = [{"op_code": 4, "w": worker, "i": i, "part": p} for p in range(1 + i % 2)]
                store.append_logs("race", batch)
        except Exception as exc:
            errors.append(exc)

    pool = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    assert errors == []
    logs = store.read_logs("race", 0)
    expected = threads * sum(1 + i % 2 for i in range(per_thread))
    assert len(logs) == expected == store.get_study("race").log_count
    seen = {(log["w"], log["i"], log["part"]) for log in logs}
    assert len(seen) == expected  # each entry once
    for w in range(threads):  # each writer's batches kept whole and in its order
        mine = [(log["i"], log["part"]) for log in logs if log["w"] == w]
        assert mine == sorted(mine)


@pytest.mark.parametrize(
    ("study", "logs", "match"),
    [
        ("", [{"op_code": 0}], "invalid study name"),
        ("../etc", [{"op_code": 0}], "invalid study name"),
        ("a/b", [{"op_code": 0}], "invalid study name"),
        ("x" * 129, [{"op_code": 0}], "invalid study name"),
        ("s p", [{"op_code": 0}], "invalid study name"),
        (None, [{"op_code": 0}], "invalid study name"),
        ("s", [], "1 to 1000"),
        ("s", [{"op_code": 0}] * (MAX_LOGS_PER_APPEND + 1), "1 to 1000"),
        ("s", "not a list", "list of objects"),
        ("s", [1, 2], "entry 0 is not an object"),
        ("s", [{"op_code": 0}, {"x": object()}], "entry 1 is not JSON"),
        ("s", [{"op_code": 0, "big": "x" * (1 << 20)}], "over 1048576"),
        ("s", [{}, {}], "entry 0 is not an Optuna journal operation"),  # found by schemathesis
        ("s", [{"op_code": 0}, {"op_code": "0"}], "entry 1 is not an Optuna"),
        ("s", [{"op_code": True}], "entry 0 is not an Optuna"),
    ],
)
def test_bad_appends_are_invalid_input_and_write_nothing(
    backend: Any, study: Any, logs: Any, match: str
) -> None:
    store = _store()
    with pytest.raises(InvalidInput, match=match):
        store.append_logs(study, logs)
    assert store.list_studies() == []


@pytest.mark.parametrize("start", [-1, "0", 1.5, None, True, 1 << 40])
def test_a_bad_read_position_is_invalid_input(backend: Any, start: Any) -> None:
    with pytest.raises(InvalidInput, match="journal position"):
        _store().read_logs("s", start)


def test_a_corrupt_entry_is_an_integrity_error_naming_it(keel_env: Any) -> None:
    from sqlalchemy import update

    from keel.store.schema_hpo import hpo_journal

    store = _store()
    store.append_logs("broken", [{"op_code": 0}, {"op_code": 4}, {"op_code": 5}])
    db = store.db  # type: ignore[attr-defined]
    for bad in ("{not json", '"a string"', '{"no_op_code": 1}'):
        with db.write() as conn:
            conn.execute(
                update(hpo_journal)
                .where(hpo_journal.c.study == "broken", hpo_journal.c.number == 1)
                .values(log=bad)
            )
        assert store.read_logs("broken", 2) == [{"op_code": 5}]  # before it is still readable
        with pytest.raises(IntegrityError, match=r"study 'broken': journal entry 1 is corrupt"):
            store.read_logs("broken", 0)
    with db.write() as conn:
        conn.execute(
            hpo_journal.delete().where(hpo_journal.c.study == "broken", hpo_journal.c.number == 1)
        )
    with pytest.raises(IntegrityError, match="journal entry 1 is missing"):
        store.read_logs("broken", 0)


def test_an_append_can_read_on_in_the_same_transaction(backend: Any) -> None:
    store = _store()
    assert store.append_and_read("s", [{"op_code": 0}], 0) == (0, [{"op_code": 0}])
    store.append_logs("s", [{"op_code": 4}])
    first, after = store.append_and_read("s", [{"op_code": 5}, {"op_code": 6}], 1)
    assert first == 2
    assert after == [{"op_code": 4}, {"op_code": 5}, {"op_code": 6}]
    assert store.append_and_read("s", [{"op_code": 7}], 10) == (4, [])
    with pytest.raises(InvalidInput, match="journal position"):
        store.append_and_read("s", [{"op_code": 8}], -1)
    with pytest.raises(InvalidInput, match="1 to 1000"):
        store.append_and_read("s", [], 0)
    assert store.get_study("s").log_count == 5
