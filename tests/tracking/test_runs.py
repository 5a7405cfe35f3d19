"""Runs, params, metrics and tags through the SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

import keel
from keel.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from keel.tracking.entities import RunStatus

pytestmark = pytest.mark.usefixtures("backend")


def test_a_run_records_who_where_and_when() -> None:
    with keel.start_run(experiment="churn", run_name="baseline") as run:
        run.log_param("model", "logreg")

    stored = keel.get_run(run.run_id)
    assert stored.name == "baseline"
    assert stored.status is RunStatus.FINISHED
    assert stored.end_time is not None
    assert stored.end_time >= stored.start_time
    assert stored.user
    assert stored.source
    assert keel.get_experiment("churn").experiment_id == stored.experiment_id


def test_an_exception_inside_the_block_fails_the_run_and_propagates() -> None:
    with pytest.raises(ZeroDivisionError), keel.start_run(experiment="e") as run:
        run.log_metric("before", 1.0)
        _ = 1 / 0
    stored = keel.get_run(run.run_id)
    assert stored.status is RunStatus.FAILED
    assert stored.metrics == {"before": 1.0}


def test_ctrl_c_marks_the_run_killed() -> None:
    with pytest.raises(KeyboardInterrupt), keel.start_run(experiment="e") as run:
        raise KeyboardInterrupt
    assert keel.get_run(run.run_id).status is RunStatus.KILLED


def test_nested_runs_point_at_their_parent() -> None:
    with keel.start_run(experiment="hpo") as parent:
        with keel.start_run(experiment="hpo", run_name="trial-1", nested=True) as child:
            pass
    assert keel.get_run(child.run_id).parent_run_id == parent.run_id


def test_a_child_run_naming_no_experiment_joins_its_parents() -> None:
    with keel.start_run(experiment="hpo") as parent:
        with keel.start_run(run_name="trial-1", nested=True) as child:
            pass
    with keel.start_run(run_name="trial-2", parent_run_id=parent.run_id) as late:
        pass
    with keel.start_run(experiment="other", parent_run_id=parent.run_id) as elsewhere:
        pass
    assert keel.get_run(child.run_id).experiment_id == parent.experiment_id
    assert keel.get_run(late.run_id).experiment_id == parent.experiment_id
    assert keel.get_run(elsewhere.run_id).experiment_id != parent.experiment_id
    assert {r.name for r in keel.search_runs(experiment="hpo")} >= {"trial-1", "trial-2"}


def test_a_second_unnested_run_in_the_same_thread_is_refused() -> None:
    with keel.start_run(experiment="e"):
        with pytest.raises(InvalidInput, match="already active"):
            keel.start_run(experiment="e")


def test_params_are_immutable_but_relogging_the_same_value_is_fine() -> None:
    with keel.start_run(experiment="e") as run:
        run.log_params({"lr": 0.1, "depth": 3, "max_leaf_nodes": None})
        run.log_param("lr", 0.1)
        with pytest.raises(Conflict, match=r"'lr'.*immutable"):
            run.log_params({"lr": 0.2, "extra": "x"})
    stored = keel.get_run(run.run_id)
    # The conflicting batch was written in full or not at all: not at all.
    assert stored.params == {"lr": "0.1", "depth": "3", "max_leaf_nodes": "None"}


def test_metrics_keep_nan_and_infinities_and_their_history() -> None:
    with keel.start_run(experiment="e") as run:
        for step, value in enumerate([1.0, math.nan, math.inf, -math.inf, 0.5]):
            run.log_metric("loss", value, step=step)
        run.log_metric("only_nan", math.nan)
        run.log_metric("pos_inf", math.inf)

    history = keel.get_metric_history(run.run_id, "loss")
    values = [m.value for m in history]
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert values[0] == 1.0
    assert math.isnan(values[1])
    assert values[2] == math.inf
    assert values[3] == -math.inf
    assert values[4] == 0.5
    latest = keel.get_run(run.run_id).metrics
    assert latest["loss"] == 0.5
    assert math.isnan(latest["only_nan"])
    assert latest["pos_inf"] == math.inf


def test_the_latest_metric_is_the_one_at_the_highest_step() -> None:
    with keel.start_run(experiment="e") as run:
        run.log_metric("acc", 0.9, step=10)
        run.flush()
        run.log_metric("acc", 0.1, step=2)  # a late, lower step does not win
    assert keel.get_run(run.run_id).metrics["acc"] == 0.9


def test_tags_can_change() -> None:
    with keel.start_run(experiment="e", tags={"team": "a"}) as run:
        run.set_tag("team", "b")
        run.set_tags({"stage": "dev"})
    assert keel.get_run(run.run_id).tags == {"team": "b", "stage": "dev"}


def test_module_level_shortcuts_log_to_the_active_run() -> None:
    with keel.start_run(experiment="e") as run:
        keel.log_param("a", 1)
        keel.log_params({"b": 2})
        keel.log_metric("m", 1.5)
        keel.log_metrics({"n": 2.5}, step=3)
        keel.set_tag("t", "v")
    stored = keel.get_run(run.run_id)
    assert stored.params == {"a": "1", "b": "2"}
    assert stored.metrics == {"m": 1.5, "n": 2.5}
    assert stored.tags == {"t": "v"}


def test_logging_without_an_active_run_says_how_to_start_one() -> None:
    with pytest.raises(NotFound, match="start_run"):
        keel.log_metric("m", 1.0)


def test_logging_after_the_run_ended_is_a_conflict() -> None:
    with keel.start_run(experiment="e") as run:
        pass
    with pytest.raises(Conflict, match="ended"):
        run.log_metric("m", 1.0)
    with pytest.raises(Conflict, match="ended"):
        run.log_param("p", 1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.log_metric("", 1.0), "non-empty"),
        (lambda r: r.log_metric("x" * 251, 1.0), "limit is 250"),
        (lambda r: r.log_metric("bad\nkey", 1.0), "only letters"),
        (lambda r: r.log_metric("../escape", 1.0), "only letters"),
        (lambda r: r.log_metric("m", "high"), "must be a number"),
        (lambda r: r.log_metric("m", None), "must be a number"),
        (lambda r: r.log_metric("m", True), "must be a number"),
        (lambda r: r.log_metric("m", 1.0, step="3"), "step must be an integer"),
        (lambda r: r.log_metric("m", 1.0, step=2**70), "64-bit"),
        (lambda r: r.log_metric("m", 1.0, timestamp=-5), "outside the valid range"),
        (lambda r: r.log_param("p", "v" * 6001), "limit is 6000"),
        (lambda r: r.set_tag("t", None), "no value"),
        (lambda r: r.log_params(["not", "a", "mapping"]), "must be a mapping"),
        (lambda r: r.log_metrics(3.0), "must be a mapping"),
        (lambda r: r.set_tag(42, "v"), "must be a string"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(call, message) -> None:
    with keel.start_run(experiment="e") as run:
        with pytest.raises(InvalidInput, match=message):
            call(run)
        run.log_metric("fine", 1.0)
    stored = keel.get_run(run.run_id)
    assert stored.metrics == {"fine": 1.0}
    assert stored.params == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"experiment": ""}, "must not be empty"),
        ({"experiment": "   "}, "must not be empty"),
        ({"experiment": "x" * 257}, "limit is 256"),
        ({"experiment": 7}, "must be a string"),
        ({"experiment": "e", "run_name": "n" * 300}, "limit is 256"),
        ({"experiment": "e", "run_name": "a\x00b"}, "control characters"),
    ],
)
def test_bad_names_are_refused(kwargs, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        keel.start_run(**kwargs)
    assert keel.active_run() is None


def test_dataset_inputs_record_name_digest_source_and_context(tmp_path) -> None:
    np = pytest.importorskip("numpy")
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    with keel.start_run(experiment="e") as run:
        run.log_dataset(np.ones((4, 2)), name="features", context="training", source="s3://b/x")
        run.log_dataset(np.ones((4, 2)), name="holdout", context="validation")
        run.log_dataset(data)  # a path is named after its file
        for bad in ("", " ", "x" * 10_000):
            with pytest.raises(InvalidInput, match="dataset"):
                run.log_dataset(np.ones(3), name=bad)
        with pytest.raises(InvalidInput, match="dataset"):
            run.log_dataset(data, name="")
    inputs = {i.name: i for i in keel.get_run_inputs(run.run_id)}
    assert set(inputs) == {"features", "holdout", "train.csv"}
    assert (inputs["features"].context, inputs["features"].source) == ("training", "s3://b/x")
    assert inputs["holdout"].context == "validation"
    assert inputs["features"].digest == inputs["holdout"].digest  # same content, same digest
    assert inputs["train.csv"].digest != inputs["features"].digest
    assert inputs["train.csv"].source == data.resolve().as_uri()


def test_numpy_scalars_are_accepted_as_metric_values() -> None:
    np = pytest.importorskip("numpy")
    with keel.start_run(experiment="e") as run:
        run.log_metric("f32", np.float32(0.5))
        run.log_metric("i64", np.int64(3), step=np.int64(2))
    assert keel.get_run(run.run_id).metrics == {"f32": 0.5, "i64": 3.0}


def test_unknown_ids_are_not_found_and_malformed_ids_are_invalid() -> None:
    with pytest.raises(NotFound, match="no run"):
        keel.get_run("0" * 32)
    with pytest.raises(InvalidInput, match="32 lowercase hex"):
        keel.get_run("not-an-id")
    with pytest.raises(InvalidInput):
        keel.get_run("'; DROP TABLE runs; --")
    with pytest.raises(NotFound, match="no experiment"):
        keel.get_experiment("missing")


def test_duplicate_experiment_names_are_refused() -> None:
    keel.create_experiment("dup", description="first")
    with pytest.raises(AlreadyExists, match="'dup'"):
        keel.create_experiment("dup")
    assert [e.name for e in keel.list_experiments()] == ["dup"]


def test_resuming_a_finished_run_appends_to_it() -> None:
    with keel.start_run(experiment="e") as run:
        run.log_metric("m", 1.0, step=0)
    with keel.start_run(run_id=run.run_id) as resumed:
        resumed.log_metric("m", 2.0, step=1)
    assert [m.value for m in keel.get_metric_history(run.run_id, "m")] == [1.0, 2.0]
    assert keel.get_run(run.run_id).status is RunStatus.FINISHED


def test_a_second_writer_on_a_live_run_is_a_conflict() -> None:
    from keel.stores import current_stores

    with keel.start_run(experiment="e") as run:
        other = current_stores().tracking
        with pytest.raises(Conflict, match="another process"):
            other.claim_run(run.run_id, "otherhost:1", keel.get_run(run.run_id).start_time, 60_000)


def test_a_run_whose_writer_stopped_heartbeating_is_failed_by_gc(monkeypatch) -> None:
    from keel.stores import current_stores

    run = keel.start_run(experiment="e")
    assert keel.gc_runs(timeout=3600) == []
    # Pretend the writer died long ago: its heartbeat is old.
    tracking = current_stores().tracking
    tracking.heartbeat(run.run_id, run._writer, 1)
    assert keel.gc_runs(timeout=60) == [run.run_id]
    stored = keel.get_run(run.run_id)
    assert stored.status is RunStatus.FAILED
    assert stored.tags["keel.failure"] == "heartbeat timed out"
    run.end(RunStatus.FAILED)


def test_metrics_logged_through_a_tiny_buffer_are_all_written(monkeypatch) -> None:
    from keel.config import reset_settings

    monkeypatch.setenv("KEEL_METRIC_BUFFER_SIZE", "7")
    monkeypatch.setenv("KEEL_METRIC_FLUSH_INTERVAL", "0.01")
    reset_settings()
    with keel.start_run(experiment="e") as run:
        for i in range(500):
            run.log_metric("m", float(i), step=i)
    assert len(keel.get_metric_history(run.run_id, "m")) == 500


def test_info_flushes_buffered_metrics_first() -> None:
    with keel.start_run(experiment="e") as run:
        run.log_metric("m", 3.0)
        assert run.info.metrics == {"m": 3.0}


def _awkward_doubles(count: int) -> list[float]:
    import random
    import struct

    rng = random.Random(20261125)
    values = [0.1, 0.30000000000000004, 5e-324, -2.2250738585072014e-308,
              1.7976931348623157e308, -1.1661348785953643e294, 1 / 3, 2.0**53 + 2]  # fmt: skip
    while len(values) < count:
        (value,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(value):
            values.append(value)
    return values


def test_metric_values_round_trip_exactly_through_reads_and_searches() -> None:
    values = _awkward_doubles(300)
    with keel.start_run(experiment="exact") as run:
        run.log_metrics({f"m{i}": v for i, v in enumerate(values)})
    expected = {f"m{i}": v for i, v in enumerate(values)}
    assert keel.get_run(run.run_id).metrics == expected
    (found,) = keel.search_runs(experiment="exact")
    assert found.metrics == expected
