"""``TrackingStore.write_runs``: many complete or partial runs in one call, on every backend.

The same batch must leave the same runs as the one-run methods (create_run, log_batch,
log_inputs, add_artifacts, end_run) on SQLite, PostgreSQL and through a live server;
a batch with any bad write leaves nothing written.
"""

from __future__ import annotations

import pytest

from keel.errors import Conflict, InvalidInput, NotFound
from keel.stores import current_stores
from keel.tracking.entities import ArtifactEntry, DatasetInput, RunStatus
from keel.tracking.run_writes import MAX_RUN_WRITES, RunWrite, new_run_id
from keel.tracking.store import TrackingStore

pytestmark = pytest.mark.usefixtures("backend")

DIGEST_A, DIGEST_B = "a" * 64, "b" * 64


def _tracking() -> TrackingStore:
    return current_stores().tracking


def _experiment(name: str = "writes") -> str:
    return _tracking().create_experiment(name).experiment_id


def _create(run_id: str, experiment_id: str, **extra: object) -> RunWrite:
    fields: dict[str, object] = {"name": "r", "user": "u", "start_time": 1000, **extra}
    return RunWrite(run_id, experiment_id, **fields)  # type: ignore[arg-type]


def _comparable(run_id: str) -> tuple[object, ...]:
    """The run as every read sees it, without what differs between two runs by design."""
    tracking = _tracking()
    run = tracking.get_run(run_id)
    return (
        run.status,
        run.start_time,
        run.end_time,
        run.user,
        run.source,
        run.git_commit,
        run.git_dirty,
        run.lifecycle_stage,
        run.params,
        run.metrics,
        run.tags,
        tracking.get_inputs(run_id),
        tracking.list_artifacts(run_id),
    )


def test_a_batch_writes_what_the_one_run_methods_write() -> None:
    tracking = _tracking()
    exp = _experiment()
    parent = tracking.create_run(exp, name="parent", user="u", start_time=900)
    inputs = [DatasetInput("data.csv", DIGEST_A, "data.csv", "step-input")]
    artifacts = [ArtifactEntry("logs.txt", DIGEST_B, 12)]
    tags = {"keel.node": "n", "keel.status": "running"}
    params = {"x": "1", "y": '"two"'}

    # the one-run methods, as the pipeline recorder used them
    one = tracking.create_run(
        exp, name="n", user="u", start_time=1000, parent_run_id=parent.run_id, tags=tags,
        writer="w", source="s.py", git_commit="c0ffee", git_dirty=False,
    )  # fmt: skip
    tracking.log_inputs(one.run_id, inputs)
    tracking.log_batch(one.run_id, params=params, tags={"keel.status": "finished"})
    tracking.add_artifacts(one.run_id, artifacts)
    tracking.end_run(one.run_id, RunStatus.FINISHED, 1500)

    # the same run in one write, and again as a start, then an end in a later batch
    both, later = new_run_id(), new_run_id()
    start = {
        "name": "n", "user": "u", "start_time": 1000, "parent_run_id": parent.run_id,
        "tags": tags, "writer": "w", "source": "s.py", "git_commit": "c0ffee",
        "git_dirty": False, "params": params, "inputs": tuple(inputs),
    }  # fmt: skip
    end = {
        "tags": {"keel.status": "finished"},
        "artifacts": tuple(artifacts),
        "status": RunStatus.FINISHED,
        "end_time": 1500,
    }
    complete = RunWrite(both, exp, **start).then(RunWrite(both, **end))  # type: ignore[arg-type]
    tracking.write_runs([complete, RunWrite(later, exp, **start)])  # type: ignore[arg-type]
    running = tracking.get_run(later)
    assert running.status is RunStatus.RUNNING
    assert running.end_time is None
    assert running.tags == tags
    tracking.write_runs([RunWrite(later, **end)])  # type: ignore[arg-type]

    assert _comparable(both) == _comparable(one.run_id)
    assert _comparable(later) == _comparable(one.run_id)
    for run_id in (both, later):
        found = tracking.get_run(run_id)
        assert (found.name, found.parent_run_id, found.experiment_id) == (
            "n",
            parent.run_id,
            exp,
        )
    children = tracking.search_runs([exp], filter=f"attributes.parent_run_id = '{parent.run_id}'")
    assert {r.run_id for r in children} == {one.run_id, both, later}
    found = tracking.search_runs([exp], filter="params.x = '1' and tags.`keel.status` = 'finished'")
    assert len(found) == 3


def test_a_parent_and_its_children_in_one_batch() -> None:
    tracking = _tracking()
    exp = _experiment()
    parent, child = new_run_id(), new_run_id()
    tracking.write_runs(
        [
            _create(parent, exp, tags={"kind": "pipeline"}),
            _create(child, exp, parent_run_id=parent, status=RunStatus.FAILED, end_time=1001),
        ]
    )
    assert tracking.get_run(child).parent_run_id == parent
    assert tracking.get_run(child).status is RunStatus.FAILED
    assert tracking.get_run(parent).status is RunStatus.RUNNING
    with pytest.raises(InvalidInput, match="created later in the same batch"):
        a, b = new_run_id(), new_run_id()
        tracking.write_runs([_create(b, exp, parent_run_id=a), _create(a, exp)])


def test_a_creating_write_sent_twice_creates_the_run_once() -> None:
    tracking = _tracking()
    exp = _experiment()
    run_id = new_run_id()
    write = _create(run_id, exp, params={"p": "1"}, tags={"t": "1"}, writer="me")
    tracking.write_runs([write])
    tracking.write_runs([write])  # e.g. a step's worker and the engine both wrote it
    assert [r.run_id for r in tracking.search_runs([exp])] == [run_id]
    found = tracking.get_run(run_id)
    assert (found.params, found.tags, found.status) == ({"p": "1"}, {"t": "1"}, RunStatus.RUNNING)
    # a run created elsewhere first is taken as it is, and written to
    created = tracking.create_run(exp, name="r", user="u", start_time=5)
    tracking.write_runs([_create(created.run_id, exp, tags={"t": "2"})])
    assert tracking.get_run(created.run_id).tags == {"t": "2"}
    assert tracking.get_run(created.run_id).start_time == 5


def test_a_bad_write_leaves_nothing_of_its_batch() -> None:
    tracking = _tracking()
    exp = _experiment()
    run = tracking.create_run(exp, name="r", user="u", start_time=1, tags={"t": "0"})
    tracking.log_batch(run.run_id, params={"p": "1"})
    kept = tracking.create_run(exp, name="kept", user="u", start_time=1, tags={"t": "0"})
    other = _experiment("other")
    fresh = new_run_id()
    bad_batches = [
        (RunWrite(new_run_id(), tags={"t": "1"}), NotFound, "no run with id"),
        (RunWrite(run.run_id, params={"p": "2"}), Conflict, "immutable"),
        (_create(new_run_id(), "f" * 32), NotFound, "no experiment"),
        (_create(new_run_id(), exp, parent_run_id="e" * 32), NotFound, "parent run"),
        (_create(run.run_id, other), Conflict, "already exists in experiment"),
    ]
    for bad, error, message in bad_batches:
        good = [_create(fresh, exp), RunWrite(kept.run_id, tags={"t": "changed"})]
        with pytest.raises(error, match=message):
            tracking.write_runs([*good, bad])
        assert tracking.search_runs([exp], filter=f"attributes.run_id = '{fresh}'") == []
        assert tracking.get_run(kept.run_id).tags == {"t": "0"}
        assert tracking.get_run(run.run_id).params == {"p": "1"}
    tracking.delete_experiment(other)
    with pytest.raises(Conflict, match="deleted"):
        tracking.write_runs([_create(new_run_id(), other)])


@pytest.mark.parametrize(
    ("writes", "message"),
    [
        (lambda r, e: [RunWrite(r, e, name="n")], "needs a name, a user and a start_time"),
        (lambda r, e: [RunWrite(r, name="n")], "but no experiment_id"),
        (lambda r, e: [RunWrite(r, status=RunStatus.FINISHED)], "or neither"),
        (lambda r, e: [RunWrite(r, status=RunStatus.RUNNING, end_time=1)], "final status"),
        (lambda r, e: [RunWrite(r), RunWrite(r)], "written twice"),
        (lambda r, e: [RunWrite(new_run_id()) for _ in range(MAX_RUN_WRITES + 1)], "limit"),
        (lambda r, e: [{"run_id": r}], "not a RunWrite"),
    ],
)
def test_malformed_batches_are_refused(writes: object, message: str) -> None:
    exp = _experiment()
    with pytest.raises(InvalidInput, match=message):
        _tracking().write_runs(writes(new_run_id(), exp))  # type: ignore[operator]
    assert _tracking().search_runs([exp]) == []


def test_merged_writes_keep_the_first_creation_and_the_last_values() -> None:
    run_id = new_run_id()
    first = _create(run_id, "1" * 32, tags={"a": "1", "b": "1"}, params={"p": "1"})
    second = RunWrite(
        run_id,
        tags={"b": "2"},
        params={"q": "2"},
        artifacts=(ArtifactEntry("x", DIGEST_A, 1), ArtifactEntry("y", DIGEST_A, 1)),
    )
    third = RunWrite(
        run_id,
        artifacts=(ArtifactEntry("x", DIGEST_B, 2),),
        status=RunStatus.KILLED,
        end_time=9,
    )
    merged = first.then(second).then(third)
    assert merged.experiment_id == "1" * 32
    assert (merged.name, merged.start_time) == ("r", 1000)
    assert merged.tags == {"a": "1", "b": "2"}
    assert merged.params == {"p": "1", "q": "2"}
    assert [(a.path, a.digest) for a in merged.artifacts] == [("y", DIGEST_A), ("x", DIGEST_B)]
    assert (merged.status, merged.end_time) == (RunStatus.KILLED, 9)
    with pytest.raises(InvalidInput, match="cannot merge"):
        first.then(RunWrite(new_run_id()))
