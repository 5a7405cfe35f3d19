"""Running pipelines on the local executor: caching, failures, retries, timeouts, records."""

from __future__ import annotations

from pathlib import Path

import pytest
import sample_pipelines as sp

import keel
import keel.pipelines as kp
from keel.errors import InvalidInput
from keel.pipelines.records import KEY


def statuses(run: kp.PipelineRunInfo) -> dict[str, str]:
    return {s.node: s.status for s in run.steps}


def test_a_run_records_every_step_and_a_rerun_is_all_cached(home: Path) -> None:
    first = sp.arithmetic.run({"x": 3, "y": 4}, max_workers=2)
    assert first.status == "finished"
    assert statuses(first) == {n: "finished" for n in ("number", "number-2", "add", "add-2")}
    assert kp.load_step_output(first.run_id, "add-2") == 14
    assert first.step("add").upstream == ("number", "number-2")
    assert first.params == {"x": "3", "y": "4"}
    assert first.step("number").params == {"value": "3"}

    second = sp.arithmetic.run({"x": 3, "y": 4}, max_workers=2)
    assert statuses(second) == {n: "cached" for n in statuses(first)}
    for node in statuses(first):
        assert second.step(node).cached_from == first.step(node).run_id
        assert second.step(node).output == first.step(node).output
        assert second.step(node).cache_key == first.step(node).cache_key
    assert kp.load_step_output(second.run_id, "add-2") == 14
    third = sp.arithmetic.run({"x": 3, "y": 4}, max_workers=2)  # a hit on a hit: the origin
    assert third.step("add").cached_from == first.step("add").run_id


def test_a_changed_parameter_reruns_only_what_depends_on_it(home: Path) -> None:
    sp.arithmetic.run({"x": 1, "y": 2}, max_workers=2)
    again = sp.arithmetic.run({"x": 1, "y": 5}, max_workers=2)
    assert statuses(again) == {
        "number": "cached", "number-2": "finished", "add": "finished", "add-2": "finished",
    }  # fmt: skip
    assert kp.load_step_output(again.run_id, "add-2") == 12


def test_no_cache_per_run_and_per_step(home: Path) -> None:
    sp.arithmetic.run(max_workers=2)
    fresh = sp.arithmetic.run(no_cache=True, max_workers=2)
    assert set(statuses(fresh).values()) == {"finished"}

    @kp.pipeline(name="per_step")
    def per_step():
        a = sp.number.with_options(no_cache=True)(1)
        sp.add(a, a)

    assert statuses(per_step.run(max_workers=1)) == {"number": "finished", "add": "finished"}
    # number runs again; its output has the same digest, so add (keyed on it) is a hit
    assert statuses(per_step.run(max_workers=1)) == {"number": "finished", "add": "cached"}


def test_a_cache_hit_is_a_tag_search_and_the_record_is_nested(home: Path) -> None:
    run = sp.arithmetic.run(max_workers=2)
    step = run.step("add")
    found = keel.search_runs(
        "arithmetic", filter=f"tags.`{KEY}` = '{step.cache_key}' and attributes.status = 'finished'"
    )
    assert [r.run_id for r in found] == [step.run_id]
    record = keel.get_run(step.run_id)
    assert record.parent_run_id == run.run_id
    assert record.tags["keel.status"] == "finished"
    assert record.tags["keel.output.digest"] == step.output.digest  # type: ignore[union-attr]


def test_captured_logs_are_an_artifact_of_the_step_run(home: Path, tmp_path: Path) -> None:
    run = sp.arithmetic.run({"x": 5, "y": 6}, max_workers=2)
    out = keel.download_artifacts(run.step("number").run_id, "logs.txt", tmp_path / "a")
    assert "number 5" in out.read_text()
    out = keel.download_artifacts(run.step("add").run_id, "logs.txt", tmp_path / "b")
    assert "adding 5 and 6" in out.read_text()


def test_a_failure_stops_only_what_depends_on_it(home: Path) -> None:
    with pytest.raises(kp.PipelineFailed, match="failed at step 'boom'") as caught:
        sp.branches.run(max_workers=2)
    run = kp.get_pipeline_run(caught.value.run_id)
    assert run.status == "failed"
    assert caught.value.failed == ("boom",)
    assert statuses(run) == {
        "number": "finished", "boom": "failed", "add": "skipped",
        "number-2": "finished", "add-2": "finished",
    }  # fmt: skip
    assert "ValueError: boom on 1" in (run.step("boom").error or "")
    assert "'boom'" in (run.step("add").error or "")
    assert kp.load_step_output(run.run_id, "add-2") == 4


def test_resume_reruns_the_failed_step_and_reuses_the_rest(home: Path) -> None:
    with pytest.raises(kp.PipelineFailed) as caught:
        sp.branches.run(no_cache=True, max_workers=2)
    failed_id = caught.value.run_id

    @kp.step(name="boom")  # the fix: the same step name, code that no longer raises
    def fixed(value: int, fail: bool = True) -> int:
        return value * 10

    @kp.pipeline(name="branches")
    def branches(fail: bool = True):
        bad = fixed(sp.number(1), fail=fail)
        sp.add(bad, bad)
        good = sp.number(2)
        sp.add(good, good)

    resumed = kp.resume_pipeline(failed_id, pipeline=branches, max_workers=2)
    assert resumed.resume_of == failed_id
    assert resumed.status == "finished"
    old = kp.get_pipeline_run(failed_id)
    assert statuses(resumed) == {
        "number": "cached", "boom": "finished", "add": "finished",
        "number-2": "cached", "add-2": "cached",
    }  # fmt: skip
    assert resumed.step("number").cached_from == old.step("number").run_id
    assert resumed.step("boom").cached_from is None
    assert kp.load_step_output(resumed.run_id, "add") == 20
    with pytest.raises(InvalidInput, match="nothing to resume"):
        kp.resume_pipeline(resumed.run_id, pipeline=branches)


def test_resume_imports_the_pipeline_from_its_reference(home: Path) -> None:
    with pytest.raises(kp.PipelineFailed) as caught:
        sp.branches.run(max_workers=2)
    run = kp.get_pipeline_run(caught.value.run_id)
    assert run.ref == "sample_pipelines:branches"
    again = kp.resume_pipeline(run.run_id, raise_on_failure=False, max_workers=2)
    assert statuses(again)["number"] == "cached"
    assert statuses(again)["boom"] == "failed"  # the code did not change: it fails again


def test_retries_back_off_and_count_attempts(home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    run = sp.retrying.run({"marker": str(marker)}, max_workers=1)
    step = run.step("flaky")
    assert step.status == "finished"
    assert step.attempts == 2
    assert marker.read_text().count("attempt") == 2
    logs = keel.download_artifacts(step.run_id, "logs.txt", tmp_path / "logs")
    assert "attempt 1 failed: RuntimeError: not yet" in logs.read_text()


def test_a_step_past_its_timeout_is_stopped_and_others_finish(home: Path) -> None:
    run = sp.slow.run(raise_on_failure=False, max_workers=2)
    assert statuses(run) == {"sleepy": "failed", "number": "finished"}
    assert "timeout of 1 s" in (run.step("sleepy").error or "")


def test_a_worker_that_dies_fails_only_its_step(home: Path) -> None:
    run = sp.crashing.run(raise_on_failure=False, max_workers=2)
    assert statuses(run) == {"crash": "failed", "number": "finished"}
    assert "worker process died (exit code 7)" in (run.step("crash").error or "")


def test_an_output_that_cannot_be_stored_fails_naming_the_step(home: Path) -> None:
    with pytest.raises(kp.PipelineFailed, match="generator_maker") as caught:
        sp.unstorable.run(max_workers=1)
    error = kp.get_pipeline_run(caught.value.run_id).step("generator_maker").error or ""
    assert "cannot be stored" in error
    assert "generator" in error


def test_fan_in_of_many_outputs(home: Path) -> None:
    run = sp.fan.run({"n": 12}, max_workers=2)
    assert len(run.steps) == 13
    assert kp.load_step_output(run.run_id, "total") == sum(range(12))
    assert run.step("total").upstream == ("number", *(f"number-{i}" for i in range(2, 13)))


def test_dataframes_and_models_flow_between_steps(home: Path) -> None:
    run = sp.modelling.run(max_workers=2)
    kinds = {s.node: s.output.kind for s in run.steps if s.output}
    assert kinds == {"frame": "parquet", "fit": "model", "predict": "json"}
    assert kp.load_step_output(run.run_id, "predict") == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    frame = kp.load_step_output(run.run_id, "frame")
    assert list(frame.index) == [f"r{i}" for i in range(6)]


def test_a_changed_declared_input_reruns_the_step(home: Path) -> None:
    Path("input.txt").write_text("one", encoding="utf-8")
    first = sp.reading.run(max_workers=1)
    assert statuses(first) == {"read": "finished"}
    assert statuses(sp.reading.run(max_workers=1)) == {"read": "cached"}
    Path("input.txt").write_text("two!", encoding="utf-8")
    third = sp.reading.run(max_workers=1)
    assert statuses(third) == {"read": "finished"}
    assert kp.load_step_output(third.run_id, "read") == "two!"
    inputs = keel.get_run_inputs(third.step("read").run_id)
    assert [i.source for i in inputs] == ["input.txt"]


def test_a_missing_declared_input_fails_that_step(home: Path) -> None:
    run = sp.reading.run({"path": "nope.txt"}, raise_on_failure=False, max_workers=1)
    assert run.step("read").status == "failed"
    assert "'nope.txt' does not exist" in (run.step("read").error or "")


def test_inline_executor_and_bad_executor_options(home: Path) -> None:
    run = sp.arithmetic.run({"x": 7, "y": 8}, executor="inline")
    assert kp.load_step_output(run.run_id, "add-2") == 30
    with pytest.raises(InvalidInput, match="unknown executor 'ray!'"):
        sp.arithmetic.run(executor="ray!")
    for bad in (0, -1, 10**6, 2.5, True):
        with pytest.raises(InvalidInput, match="max_workers"):
            sp.arithmetic.run(max_workers=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no_cache"):
        kp.run_pipeline(sp.arithmetic, no_cache="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"expected a @keel\.pipeline"):
        kp.run_pipeline(sp.add)  # type: ignore[arg-type]


def test_listing_pipelines_and_runs(home: Path) -> None:
    assert kp.list_pipelines() == []
    assert kp.list_pipeline_runs() == []
    a = sp.arithmetic.run(executor="inline")
    b = sp.arithmetic.run(executor="inline")
    sp.fan.run({"n": 1}, executor="inline")
    names = {p.name: p for p in kp.list_pipelines()}
    assert set(names) == {"arithmetic", "fan"}
    assert names["arithmetic"].runs == 2
    assert names["arithmetic"].last_run_id == b.run_id
    runs = kp.list_pipeline_runs("arithmetic")
    assert [r.run_id for r in runs] == [b.run_id, a.run_id]
    with pytest.raises(keel.NotFound, match="no pipeline named 'nope'"):
        kp.list_pipeline_runs("nope")
    with pytest.raises(InvalidInput, match="max_results"):
        kp.list_pipeline_runs(max_results=0)


def test_reading_runs_with_hostile_ids(home: Path) -> None:
    for bad in ("", "x" * 10_000, "../../etc/passwd", "'; drop table runs; --"):
        with pytest.raises(InvalidInput):
            kp.get_pipeline_run(bad)
    with pytest.raises(keel.NotFound):
        kp.get_pipeline_run("0" * 32)
    with keel.start_run(experiment="plain") as plain:
        pass
    with pytest.raises(InvalidInput, match="not a pipeline run"):
        kp.get_pipeline_run(plain.run_id)
    run = sp.arithmetic.run(executor="inline")
    with pytest.raises(keel.NotFound, match="no step 'nope'"):
        kp.load_step_output(run.run_id, "nope")


def test_an_unguarded_script_gets_a_hint_not_a_hang(home: Path, tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import keel

            @keel.step
            def one() -> int:
                return 1

            @keel.pipeline
            def p():
                one()

            p.run(raise_on_failure=False, max_workers=1)  # no __main__ guard
            print(keel.get_pipeline_run(keel.list_pipeline_runs()[0].run_id).steps[0].error)
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, check=False
    )
    assert 'if __name__ == "__main__":' in done.stdout, done.stderr[-2000:]


def test_an_output_missing_from_the_store_is_not_a_cache_hit(home: Path) -> None:
    from keel.stores import current_stores

    first = sp.arithmetic.run(executor="inline")
    current_stores().artifacts.delete(first.step("add").output.digest)  # type: ignore[attr-defined,union-attr]
    again = sp.arithmetic.run(executor="inline")
    assert statuses(again) == {
        "number": "cached", "number-2": "cached", "add": "finished", "add-2": "cached",
    }  # fmt: skip
    assert kp.load_step_output(again.run_id, "add") == 3


def test_an_interrupted_run_is_killed_and_its_running_step_failed(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel.pipelines.pool import InlineExecutor

    def interrupt(self: InlineExecutor, wait_at_most: float) -> list:
        raise KeyboardInterrupt

    monkeypatch.setattr(InlineExecutor, "collect", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sp.arithmetic.run(executor="inline")
    run = kp.get_pipeline_run(kp.list_pipeline_runs("arithmetic")[0].run_id)
    assert run.status == "killed"
    assert statuses(run) == {"number": "failed", "number-2": "failed"}  # both had started
    assert run.step("number").error == "the pipeline run was interrupted"
    monkeypatch.undo()
    resumed = kp.resume_pipeline(run.run_id, executor="inline")
    assert resumed.status == "finished"
