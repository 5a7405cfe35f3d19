"""A finished step is recorded only once its output is durable (keel.pipelines.durable)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
import sample_pipelines as sp

from keel.errors import StoreUnavailable
from keel.pipelines.materialize import OutputRef
from keel.pipelines.records import Recorder
from keel.store.artifacts import ArtifactStore
from keel.stores import current_stores


@pytest.fixture
def durable(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The digests made durable through the parent's store, as ``make_durable`` returns."""
    flushed: set[str] = set()
    real = ArtifactStore.make_durable

    def make_durable(self: ArtifactStore, digests: Iterable[str]) -> None:
        group = list(digests)
        real(self, group)
        flushed.update(group)

    monkeypatch.setattr(ArtifactStore, "make_durable", make_durable)
    return flushed


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch, durable: set[str]) -> list[OutputRef]:
    """Outputs of finished steps in the order they were recorded, each checked durable."""
    outputs: list[OutputRef] = []
    real = Recorder.end_step

    def end_step(self: Recorder, run_id: str, status: str, **kwargs: Any) -> None:
        output = kwargs.get("output")
        if status == "finished":
            assert output is not None
            assert output.digest in durable, "a step was recorded before its output was flushed"
            outputs.append(output)
        real(self, run_id, status, **kwargs)

    monkeypatch.setattr(Recorder, "end_step", end_step)
    return outputs


@pytest.mark.parametrize("executor", ["inline", "local"])
def test_outputs_are_flushed_before_their_steps_are_recorded(
    home: Path, recorded: list[OutputRef], executor: str
) -> None:
    run = sp.fan.run({"n": 20}, executor=executor, no_cache=True)
    assert run.counts() == {"finished": 21}
    assert {s.output.digest for s in run.steps if s.output} == {o.digest for o in recorded}
    assert len(recorded) == 21
    from keel.pipelines import load_step_output

    assert load_step_output(run.run_id, "total") == 190


def test_every_file_of_a_model_output_is_flushed(
    home: Path, durable: set[str], recorded: list[OutputRef]
) -> None:
    run = sp.modelling.run(executor="inline", no_cache=True)
    assert run.status == "finished"
    model = next(o for o in recorded if o.kind == "model")
    manifest = orjson.loads(current_stores().artifacts.read_bytes(model.digest))
    assert {digest for digest, _size in manifest["files"].values()} <= durable


def test_a_flush_that_fails_fails_the_run_and_records_no_finished_step(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: ArtifactStore, digests: Iterable[str]) -> None:
        raise StoreUnavailable("the disk refused the flush (test)")

    monkeypatch.setattr(ArtifactStore, "make_durable", broken)
    with pytest.raises(StoreUnavailable, match="refused the flush"):
        sp.arithmetic.run(executor="inline", no_cache=True)
    from keel.pipelines import get_pipeline_run, list_pipeline_runs

    run = get_pipeline_run(list_pipeline_runs("arithmetic")[0].run_id)
    assert run.status == "failed"
    assert run.steps, "the steps that started are recorded"
    assert all(s.status != "finished" for s in run.steps), run.counts()
    assert any("flushed to disk" in (s.error or "") for s in run.steps)
