"""The audit log: every state change recorded, chained, and tampering detected and named.

These tests read the log from the SQL store, so they run on SQLite and PostgreSQL (not
through a server: reading the audit log over REST does not exist yet).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

import keel
from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.governance import (
    AuditEntry,
    acting_as,
    audit_log,
    current_actor,
    verify_audit_log,
)
from keel.governance.audit import parse_since
from keel.store.database import Database
from keel.stores import Stores, current_stores
from keel.tracking.context import current_user
from keel.tracking.entities import RunStatus


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_env(
    request: pytest.FixtureRequest, keel_env: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Yield a fresh Keel home on SQLite or on a new PostgreSQL database."""
    if request.param == "sqlite":
        yield keel_env
        return
    from tests.conftest import _reset

    url = request.getfixturevalue("postgres_keel_url")
    monkeypatch.setenv("KEEL_TRACKING_URI", url)
    _reset()
    yield keel_env


def _stores() -> Stores:
    return current_stores()


def _db() -> Database:
    return _stores().tracking.db  # type: ignore[attr-defined]


def _sql(statement: str, **params: Any) -> None:
    """Tamper with the database directly, as someone with write access to it could."""
    with _db().write() as conn:
        conn.execute(text(statement), params)


def _actions() -> list[tuple[str, str, str]]:
    return [(e.action, e.object_type, e.object_id) for e in audit_log(limit=1000)]


def _version_fields(run_id: str | None = None) -> dict[str, Any]:
    return {
        "source": "runs:/x/model",
        "artifact_digest": "d" * 64,
        "flavor": "sklearn",
        "created_by": "tester",
        "run_id": run_id,
    }


def _populate() -> dict[str, str]:
    """Make one of every audited change; return the ids involved."""
    tracking, registry = _stores().tracking, _stores().registry
    exp = tracking.create_experiment("churn", tags={"team": "ml"})
    now = int(time.time() * 1000)
    run = tracking.create_run(exp.experiment_id, name="r1", user="u", start_time=now)
    tracking.log_batch(run.run_id, params={"C": "0.1"}, tags={"stage": "dev"})
    tracking.log_batch(run.run_id, metrics=[("acc", 0.9, now, 0)])  # data: not audited
    tracking.heartbeat(run.run_id, "w", now)  # not audited
    tracking.claim_run(run.run_id, "writer-1", now, 60_000)
    tracking.end_run(run.run_id, RunStatus.FINISHED, now + 1)
    stale = tracking.create_run(exp.experiment_id, name="r2", user="u", start_time=now)
    assert tracking.fail_stale_runs(now + 10_000, 1_000) == [stale.run_id]
    tracking.delete_run(stale.run_id)
    registry.create_registered_model("m", description="first", tags={"k": "v"})
    registry.update_registered_model("m", description="second")
    registry.set_model_tag("m", "owner", "ana")
    registry.create_model_version("m", _version_fields(run.run_id))
    registry.update_model_version("m", 1, description="v1")
    registry.set_model_card("m", 1, "## Intended use\nchurn")
    registry.set_version_tag("m", 1, "validated", "yes")
    registry.set_alias("m", "champion", 1, actor="x")
    registry.delete_alias("m", "champion", actor="x")
    registry.create_model_version("auto", _version_fields())  # creates the model too
    registry.delete_registered_model("auto")
    other = tracking.create_experiment("old")
    tracking.delete_experiment(other.experiment_id)
    return {
        "exp": exp.experiment_id,
        "run": run.run_id,
        "stale": stale.run_id,
        "old": other.experiment_id,
    }


def test_every_state_change_is_recorded_with_actor_action_and_object(sql_env: Any) -> None:
    ids = _populate()
    run, stale = ids["run"], ids["stale"]
    assert _actions() == [
        ("experiment.create", "experiment", ids["exp"]),
        ("run.create", "run", run),
        ("run.params", "run", run),
        ("run.tags", "run", run),
        ("run.claim", "run", run),
        ("run.end", "run", run),
        ("run.create", "run", stale),
        ("run.fail_stale", "run", stale),
        ("run.delete", "run", stale),
        ("model.create", "model", "m"),
        ("model.update", "model", "m"),
        ("model.tag", "model", "m"),
        ("version.create", "version", "m/1"),
        ("version.update", "version", "m/1"),
        ("version.card", "version", "m/1"),
        ("version.tag", "version", "m/1"),
        ("alias.set", "alias", "m@champion"),
        ("alias.delete", "alias", "m@champion"),
        ("model.create", "model", "auto"),
        ("version.create", "version", "auto/1"),
        ("model.delete", "model", "auto"),
        ("experiment.create", "experiment", ids["old"]),
        ("experiment.delete", "experiment", ids["old"]),
    ]
    entries = audit_log(limit=1000)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert {e.actor for e in entries} == {current_user()}
    by_action = {e.action: e for e in entries}
    assert by_action["run.params"].change == {"C": "0.1"}
    assert by_action["run.tags"].change == {"stage": "dev"}
    assert by_action["alias.set"].change == {"version": 1, "previous_version": None}
    assert by_action["alias.delete"].change == {"version": None, "previous_version": 1}
    assert by_action["version.create"].change["artifact_digest"] == "d" * 64
    assert entries[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    result = verify_audit_log()
    assert result.ok, result.problems
    assert (result.checked, result.head_seq) == (len(entries), len(entries))


def test_the_sdk_records_datasets_and_artifacts_too(sql_env: Any, tmp_path: Any) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("hello")
    with keel.start_run(experiment="e") as run:
        run.log_params({"lr": 0.1})
        run.log_artifact(file)
        for step in range(50):
            run.log_metric("loss", 1 / (step + 1), step=step)
    actions = [a for a, _, obj in _actions() if obj == run.run_id]
    assert actions == ["run.create", "run.params", "run.artifacts", "run.end"]
    assert verify_audit_log().ok


def test_batched_run_writes_are_audited_as_the_one_run_methods_would_be(sql_env: Any) -> None:
    from keel.tracking.entities import ArtifactEntry, DatasetInput
    from keel.tracking.run_writes import RunWrite, new_run_id

    tracking = _stores().tracking
    exp = tracking.create_experiment("batch").experiment_id
    old = tracking.create_run(exp, name="old", user="u", start_time=1)
    new = new_run_id()
    before = len(audit_log(limit=1000))
    tracking.write_runs(
        [
            RunWrite(
                new, exp, name="n", user="u", start_time=2, params={"p": "1"}, tags={"t": "1"},
                inputs=(DatasetInput("d.csv", "d" * 64, "d.csv", "step-input"),),
                artifacts=(ArtifactEntry("logs.txt", "a" * 64, 1),),
                status=RunStatus.FINISHED, end_time=3,
            ),
            RunWrite(old.run_id, params={"q": "2"}, tags={"u": "v"},
                     status=RunStatus.FAILED, end_time=4),
        ]
    )  # fmt: skip
    entries = audit_log(limit=1000)[before:]
    assert [(e.action, e.object_id) for e in entries] == [
        ("run.create", new),
        ("run.params", new),
        ("run.inputs", new),
        ("run.artifacts", new),
        ("run.end", new),
        ("run.params", old.run_id),
        ("run.tags", old.run_id),
        ("run.end", old.run_id),
    ]
    changes = [e.change for e in entries]
    assert changes[0] == {
        "experiment_id": exp, "name": "n", "user": "u", "parent_run_id": None, "tags": {"t": "1"},
    }  # fmt: skip
    assert changes[1] == {"p": "1"}
    assert changes[2] == {
        "inputs": [{"name": "d.csv", "digest": "d" * 64, "context": "step-input"}]
    }
    assert changes[3] == {"artifacts": {"logs.txt": "a" * 64}}
    assert changes[4] == {"status": "finished", "end_time": 3}
    assert changes[6] == {"u": "v"}
    assert len({e.at for e in entries}) == 1  # one transaction, one append
    with pytest.raises(Conflict):
        tracking.write_runs([RunWrite(new_run_id(), exp, name="x", user="u", start_time=5),
                             RunWrite(old.run_id, params={"q": "changed"})])  # fmt: skip
    tracking.write_runs([RunWrite(old.run_id, params={"q": "2"})])  # nothing new: no entry
    assert len(audit_log(limit=1000)) == before + len(entries)
    result = verify_audit_log()
    assert result.ok, result.problems


def test_acting_as_sets_the_actor_for_its_block_only(sql_env: Any) -> None:
    assert current_actor() == current_user()
    with acting_as("alice"):
        assert current_actor() == "alice"
        keel.create_experiment("by-alice")
        with acting_as("bob"):
            keel.create_experiment("by-bob")
        keel.create_experiment("alice-again")
    keel.create_experiment("by-me")
    assert [e.actor for e in audit_log()] == ["alice", "bob", "alice", current_user()]
    with pytest.raises(InvalidInput, match="actor"):
        with acting_as(""):
            pass


def test_the_actor_is_per_thread(sql_env: Any) -> None:
    seen: list[str] = []

    def other() -> None:
        seen.append(current_actor())

    with acting_as("alice"):
        worker = threading.Thread(target=other)
        worker.start()
        worker.join()
    assert seen == [current_user()]


def test_a_failed_change_leaves_no_entry(sql_env: Any) -> None:
    tracking = _stores().tracking
    exp = tracking.create_experiment("e")
    run = tracking.create_run(exp.experiment_id, name="r", user="u", start_time=1)
    tracking.log_batch(run.run_id, params={"a": "1"})
    before = len(audit_log())
    with pytest.raises(Conflict):
        tracking.log_batch(run.run_id, params={"a": "2"}, tags={"t": "x"})
    with pytest.raises(AlreadyExists):
        tracking.create_experiment("e")
    with pytest.raises(NotFound):
        tracking.create_run("0" * 32, name="r", user="u", start_time=1)
    with pytest.raises(NotFound):
        _stores().registry.set_alias("nope", "a", 1, actor="x")
    tracking.log_batch(run.run_id, params={"a": "1"})  # the same value again: no change
    assert len(audit_log()) == before
    assert verify_audit_log().ok


def test_the_log_filters_by_object_action_time_and_limit(sql_env: Any) -> None:
    registry = _stores().registry
    registry.create_model_version("m", _version_fields())
    registry.set_alias("m", "prod", 1, actor="x")
    registry.create_model_version("m_x", _version_fields())  # '_' is no LIKE wildcard
    exp = keel.create_experiment("e")
    assert [e.object_id for e in audit_log(object="m")] == ["m", "m/1", "m@prod"]
    assert [e.object_id for e in audit_log(object="m/1")] == ["m/1"]
    assert [e.object_id for e in audit_log(object=exp.experiment_id)] == [exp.experiment_id]
    assert [e.action for e in audit_log(action="alias.set")] == ["alias.set"]
    assert {e.action for e in audit_log(action="version")} == {"version.create"}
    assert [e.seq for e in audit_log(limit=2)] == [5, 6]
    assert len(audit_log(since="1h")) == 6
    assert audit_log(since=int(time.time() * 1000) + 60_000) == []
    assert isinstance(audit_log()[0], AuditEntry)
    for bad in ({"limit": 0}, {"limit": "3"}, {"since": "yesterday"}, {"object": ""}):
        with pytest.raises(InvalidInput):
            audit_log(**bad)


def test_since_accepts_durations_dates_and_iso_times() -> None:
    now = 1_000_000_000_000
    assert parse_since("1h", now=now) == now - 3_600_000
    assert parse_since("30m", now=now) == now - 1_800_000
    assert parse_since("2w", now=now) == now - 14 * 86_400_000
    assert parse_since(12345) == 12345
    assert parse_since("2026-11-25T00:00:00+00:00") == 1795564800000
    assert parse_since("2026-11-25") == parse_since("2026-11-25T00:00:00")
    with pytest.raises(InvalidInput, match="not a time"):
        parse_since("soon")


# -- tampering -----------------------------------------------------------------------------


def _swap(a: int, b: int) -> None:
    _sql("UPDATE audit_log SET seq = -1 WHERE seq = :a", a=a)
    _sql("UPDATE audit_log SET seq = :a WHERE seq = :b", a=a, b=b)
    _sql("UPDATE audit_log SET seq = :b WHERE seq = -1", b=b)


TAMPERING = {
    "edit a change": (
        lambda: _sql('UPDATE audit_log SET change = \'{"C":"9"}\' WHERE seq = 3'),
        [(3, "edited")],
    ),
    "edit an actor": (
        lambda: _sql("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4"),
        [(4, "edited")],
    ),
    "edit a time": (
        lambda: _sql("UPDATE audit_log SET at = at + 1 WHERE seq = 2"),
        [(2, "edited")],
    ),
    "delete a middle entry": (
        lambda: _sql("DELETE FROM audit_log WHERE seq = 5"),
        [(5, "deleted")],
    ),
    "delete the last entry": (
        lambda: _sql("DELETE FROM audit_log WHERE seq = 23"),
        [(23, "truncated")],
    ),
    "swap two entries": (lambda: _swap(3, 5), [(3, "reordered"), (5, "reordered")]),
    "rewrite an entry with a fresh digest": (
        lambda: _sql(
            "UPDATE audit_log SET change = '{}', change_digest = :d WHERE seq = 6",
            d="af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        ),
        [(6, "edited")],
    ),
    "delete the head": (lambda: _sql("DELETE FROM audit_head"), [(23, "head")]),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_verify_detects_and_names_tampering(sql_env: Any, how: str) -> None:
    _populate()
    assert verify_audit_log().ok
    entries = {e.seq: e for e in audit_log(limit=1000)}
    tamper, expected = TAMPERING[how]
    tamper()
    result = verify_audit_log()
    assert not result.ok
    assert [(p.seq, p.kind) for p in result.problems] == expected, result.problems
    for problem in result.problems:
        assert f"entry {problem.seq}" in problem.message or problem.kind == "head"
    first = result.problems[0]
    if first.kind in ("edited", "reordered"):
        # The entry at that seq (before tampering, or the one moved there) is named.
        assert first.object.split(" ", 1)[1] in {e.object_id for e in entries.values()}


def test_appending_after_the_head_row_is_lost_continues_the_chain(sql_env: Any) -> None:
    keel.create_experiment("a")
    _sql("DELETE FROM audit_head")
    keel.create_experiment("b")  # the head is rebuilt from the last entry
    assert [e.seq for e in audit_log()] == [1, 2]
    assert verify_audit_log().ok


# -- concurrency ---------------------------------------------------------------------------


def test_concurrent_appenders_in_threads_leave_an_intact_chain(sql_env: Any) -> None:
    tracking = _stores().tracking
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(10):
                tracking.create_experiment(f"w{worker}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = verify_audit_log()
    assert result.ok, result.problems
    assert result.checked == result.head_seq == 40


_CHILD = """
import sys
import keel
for i in range(10):
    keel.create_experiment(f"p{sys.argv[1]}-{i}")
"""


def test_concurrent_sqlite_processes_leave_an_intact_chain(keel_env: Any) -> None:
    keel.create_experiment("first")  # the database exists before the children race
    env = {**os.environ, "KEEL_HOME": str(keel_env.home)}
    children = [subprocess.Popen([sys.executable, "-c", _CHILD, str(n)], env=env) for n in range(4)]
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0, 0]
    result = verify_audit_log()
    assert result.ok, result.problems
    assert result.checked == 41
