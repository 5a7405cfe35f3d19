"""``keel lineage REF``: a tree of where it came from and what came of it, or JSON."""

from __future__ import annotations

import json

from tests.cli.cli_support import fresh_process
from tests.lineage.conftest import Traced
from typer.testing import CliRunner

from keel.cli.main import app


def _keel(*args: str):
    fresh_process()
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def test_the_tree_shows_both_ways_from_a_model_version(traced_here: Traced) -> None:
    result = _keel("lineage", "models:/lineage-model/1")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "lineage-model v1" in out
    assert "came from" in out
    assert "led to" in out
    assert "◀ registered_as step fit" in out
    assert "◀ input_to rows.csv" in out
    assert "▶ deployed_to lineage-prod" in out


def test_json_gives_the_graph(traced_here: Traced) -> None:
    result = _keel("lineage", f"runs:/{traced_here.read_run}", "--direction", "down", "--json")
    assert result.exit_code == 0, result.output
    graph = json.loads(result.stdout)
    assert graph["root"] == f"run:{traced_here.read_run}"
    relations = {(e["source"], e["relation"]) for e in graph["edges"]}
    assert (f"run:{traced_here.fit_run}", "registered_as") in relations
    assert {n["kind"] for n in graph["nodes"]} == {"run", "artifact", "model_version", "deployment"}


def test_a_dataset_leads_down_to_the_model_version(traced_here: Traced) -> None:
    ref = f"dataset:{traced_here.dataset}"
    result = _keel("lineage", ref, "--direction", "down", "--json")
    assert result.exit_code == 0, result.output
    graph = json.loads(result.stdout)
    assert graph["root"] == ref
    assert (ref, f"run:{traced_here.read_run}", "input_to") in {
        (e["source"], e["target"], e["relation"]) for e in graph["edges"]
    }
    assert "model_version:lineage-model/1" in {n["key"] for n in graph["nodes"]}
    tree = _keel("lineage", ref, "--direction", "down")
    assert tree.exit_code == 0, tree.output
    assert "rows.csv" in tree.stdout
    assert "lineage-model v1" in tree.stdout


def test_bad_input_exits_2_with_one_line(traced_here: Traced) -> None:
    for args in (["lineage", "thing:1"], ["lineage", traced_here.fit_run, "--depth", "0"],
                 ["lineage", traced_here.fit_run, "--direction", "sideways"]):  # fmt: skip
        result = _keel(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    missing = _keel("lineage", "models:/nope/1")
    assert missing.exit_code == 2
    assert "nope" in missing.output
