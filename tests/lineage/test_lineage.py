"""Lineage: the graph around a model version, a run, an artifact, a dataset, a deployment —
on SQLite, PostgreSQL and through a server; bad references are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.lineage.conftest import Traced

import keel
from keel.errors import InvalidInput, NotFound
from keel.lineage import get_lineage as lineage

MV = "model_version:lineage-model/1"


def _edges(graph) -> set[tuple[str, str, str]]:
    return {(e.source, e.target, e.relation) for e in graph.edges}


def test_a_model_version_traces_back_to_its_step_data_and_file(traced: Traced) -> None:
    graph = lineage("models:/lineage-model/1", direction="up")
    assert graph.root == MV
    assert _edges(graph) == {
        (f"run:{traced.fit_run}", MV, "registered_as"),
        (f"artifact:{traced.artifact}", f"run:{traced.fit_run}", "input_to"),
        (f"run:{traced.read_run}", f"artifact:{traced.artifact}", "produced"),
        (f"dataset:{traced.dataset}", f"run:{traced.read_run}", "input_to"),
        (f"run:{traced.fit_run}", f"run:{traced.pipeline_run}", "part_of"),
        (f"run:{traced.read_run}", f"run:{traced.pipeline_run}", "part_of"),
    }
    assert graph.nodes[f"run:{traced.fit_run}"].attributes["type"] == "step"
    assert graph.nodes[f"dataset:{traced.dataset}"].label == "rows.csv"
    assert not graph.truncated


def test_a_step_run_leads_down_to_the_model_and_its_deployment(traced: Traced) -> None:
    graph = lineage(f"runs:/{traced.read_run}", direction="down")
    assert _edges(graph) == {
        (f"run:{traced.read_run}", f"artifact:{traced.artifact}", "produced"),
        (f"artifact:{traced.artifact}", f"run:{traced.fit_run}", "input_to"),
        (f"run:{traced.fit_run}", MV, "registered_as"),
        (f"run:{traced.fit_run}", f"artifact:{traced.score}", "produced"),
        (MV, "deployment:lineage-prod", "deployed_to"),
    }


def test_a_dataset_leads_down_to_the_runs_that_took_it_and_on_to_the_deployment(
    traced: Traced, tmp_path: Path
) -> None:
    data = f"dataset:{traced.dataset}"
    down = {
        (data, f"run:{traced.read_run}", "input_to"),
        (f"run:{traced.read_run}", f"artifact:{traced.artifact}", "produced"),
        (f"artifact:{traced.artifact}", f"run:{traced.fit_run}", "input_to"),
        (f"run:{traced.fit_run}", MV, "registered_as"),
        (f"run:{traced.fit_run}", f"artifact:{traced.score}", "produced"),
        (MV, "deployment:lineage-prod", "deployed_to"),
    }
    graph = lineage(data, direction="down")
    assert graph.root == data
    assert _edges(graph) == down
    assert graph.nodes[data].label == "rows.csv"  # the name the step logged it by
    assert not graph.truncated
    assert _edges(lineage(data, direction="both")) == down  # nothing is upstream of it
    # A run in another experiment that took the same file is found too (the search spans
    # every experiment); one that took other data is not.
    with keel.start_run(experiment="elsewhere", run_name="same-file") as same:
        same.log_dataset(tmp_path / "rows.csv", context="evaluation")
    with keel.start_run(experiment="elsewhere", run_name="other-file") as other:
        (tmp_path / "other.csv").write_text("1\n2\n", encoding="utf-8")
        other.log_dataset(tmp_path / "other.csv")
    near = lineage(data, direction="down", depth=1)
    assert set(near.nodes) == {data, f"run:{traced.read_run}", f"run:{same.run_id}"}
    assert near.nodes[f"run:{same.run_id}"].attributes["type"] == "run"


def test_a_dataset_no_run_took_is_a_graph_of_itself(traced: Traced) -> None:
    graph = lineage("dataset:" + "0" * 64, direction="down")
    assert set(graph.nodes) == {"dataset:" + "0" * 64}
    assert graph.edges == []
    assert not graph.truncated


def test_depth_bounds_the_walk_and_a_deployment_finds_its_versions(traced: Traced) -> None:
    near = lineage("deployment:lineage-prod", direction="up", depth=2)
    assert set(near.nodes) == {"deployment:lineage-prod", MV, f"run:{traced.fit_run}"}
    both = lineage(traced.fit_run, direction="both", depth=1)
    assert set(both.nodes) == {
        f"run:{traced.fit_run}",
        MV,
        f"artifact:{traced.artifact}",
        f"artifact:{traced.score}",
        f"run:{traced.pipeline_run}",
    }
    small = lineage(traced.fit_run, max_nodes=2)
    assert len(small.nodes) == 2
    assert small.truncated
    assert lineage(f"artifact:{traced.artifact}").to_dict()["root"] == (
        f"artifact:{traced.artifact}"
    )


def test_a_cache_hit_traces_to_the_run_whose_output_it_reused(traced: Traced) -> None:
    import lineage_pipelines as lp

    again = lp.from_file.run(max_workers=1)
    hit = again.step("read_rows")
    assert hit.status == "cached"
    graph = lineage(hit.run_id, direction="up", depth=1)
    assert (f"run:{traced.read_run}", f"run:{hit.run_id}", "cached_from") in _edges(graph)
    # Down from the file: the cache hit took it as its input too.
    data = f"dataset:{traced.dataset}"
    near = lineage(data, direction="down", depth=1)
    assert (data, f"run:{hit.run_id}", "input_to") in _edges(near)


@pytest.mark.parametrize(
    "ref",
    ["", "   ", "runs:/not-a-run", "dataset:xyz", "artifact:" + "A" * 64, "thing:1", "x" * 2000],
)
def test_bad_references_are_refused_naming_the_forms(keel_env: object, ref: str) -> None:
    with pytest.raises(InvalidInput):
        lineage(ref)


def test_unknown_objects_and_bad_options_are_clear_errors(keel_env: object) -> None:
    with keel.start_run(run_name="alone") as run:
        pass
    with pytest.raises(NotFound):
        lineage("models:/no-such-model/1")
    with pytest.raises(NotFound):
        lineage("0" * 32)
    with pytest.raises(NotFound):
        lineage("deployment:no-such-deployment")
    for bad in ({"direction": "sideways"}, {"depth": 0}, {"depth": 51}, {"max_nodes": 0}):
        with pytest.raises(InvalidInput):
            lineage(run.run_id, **bad)
    assert keel.get_lineage is lineage
