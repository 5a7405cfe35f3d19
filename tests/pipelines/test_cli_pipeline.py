"""``keel pipeline run | resume | list | runs | show`` through the real CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from keel.cli.main import app


def keel(*args: str) -> Result:
    """Run ``keel`` in-process as a fresh process would (nothing cached from the last)."""
    import keel.stores
    from keel.config import reset_settings
    from keel.store.artifacts import forget_artifact_stores
    from keel.store.database import forget_databases

    reset_settings()
    forget_databases()
    forget_artifact_stores()
    keel.stores._current = None
    return CliRunner().invoke(app, list(args))


def keel_json(*args: str, code: int = 0) -> Any:
    result = keel(*args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def error_line(result: Result) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_run_then_rerun_shows_cached_steps(home: Path) -> None:
    first = keel_json("pipeline", "run", "sample_pipelines:arithmetic", "-p", "x=3", "-w", "2")
    assert first["status"] == "finished"
    assert first["params"] == {"x": "3", "y": "2"}
    assert first["counts"] == {"finished": 4}
    again = keel("pipeline", "run", "sample_pipelines:arithmetic", "--param", "x=3")
    assert again.exit_code == 0, again.output
    assert "(4 cached)" in again.stdout
    assert again.stdout.count("cached") == 5  # the summary and one row per step
    fresh = keel_json("pipeline", "run", "sample_pipelines:arithmetic", "-p", "x=3", "--no-cache")
    assert fresh["counts"] == {"finished": 4}


def test_run_a_pipeline_from_a_file(home: Path) -> None:
    Path("flow.py").write_text(
        textwrap.dedent(
            """
            import keel.pipelines as kp

            @kp.step
            def greet(name: str) -> str:
                print("hello", name)
                return f"hello {name}"

            @kp.pipeline
            def hello(name: str = "world"):
                greet(name)
            """
        ),
        encoding="utf-8",
    )
    doc = keel_json("pipeline", "run", "flow.py:hello", "-p", "name=keel", "--executor", "inline")
    assert doc["steps"][0]["output"]["kind"] == "json"
    logs = keel("pipeline", "show", doc["run_id"], "--logs", "greet")
    assert logs.exit_code == 0, logs.output
    assert logs.stdout == "hello keel\n"


def test_a_failing_run_exits_1_and_resume_picks_it_up(home: Path) -> None:
    result = keel("pipeline", "run", "sample_pipelines:branches", "-w", "2")
    assert result.exit_code == 1
    assert "skipped" in result.stdout
    line = error_line(result)
    assert "failed at step 'boom' (ValueError: boom on 1)" in line
    assert "error in boom: ValueError: boom on 1" in result.stdout  # at any console width
    run_id = line.split(" run ")[1].split()[0]
    doc = keel_json("pipeline", "show", run_id[:10])
    assert {s["node"]: s["status"] for s in doc["steps"]}["add"] == "skipped"
    resumed = keel_json("pipeline", "resume", run_id, "-w", "2", code=1)  # still fails
    assert resumed["resume_of"] == run_id
    statuses = {s["node"]: s["status"] for s in resumed["steps"]}
    assert statuses == {
        "number": "cached", "boom": "failed", "add": "skipped",
        "number-2": "cached", "add-2": "cached",
    }  # fmt: skip


def test_list_runs_and_show(home: Path) -> None:
    empty = keel("pipeline", "list")
    assert empty.exit_code == 0
    assert "no pipeline has run yet" in empty.stdout
    assert keel_json("pipeline", "runs") == {"runs": []}
    run = keel_json("pipeline", "run", "sample_pipelines:fan", "-p", "n=2", "--executor", "inline")
    listed = keel_json("pipeline", "list")["pipelines"]
    assert [(p["name"], p["runs"], p["last_run_id"]) for p in listed] == [("fan", 1, run["run_id"])]
    runs = keel_json("pipeline", "runs", "fan")["runs"]
    assert [r["run_id"] for r in runs] == [run["run_id"]]
    table = keel("pipeline", "show", run["run_id"])
    assert table.exit_code == 0
    for node in ("number", "number-2", "total"):
        assert node in table.stdout
    assert "pipeline fan" in table.stdout
    assert "fan" in keel("pipeline", "runs").stdout
    assert "fan" in keel("pipeline", "list").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "nonsense"), "MODULE:NAME"),
        (("run", ":x"), "MODULE:NAME"),
        (("run", "no_such_module_zz:p"), "cannot import module 'no_such_module_zz'"),
        (("run", "missing.py:p"), "no such file"),
        (("run", "sample_pipelines:nope"), "is nothing, not a @keel.pipeline"),
        (("run", "sample_pipelines:add"), "is a Step, not a @keel.pipeline"),
        (("run", "../../etc/passwd:x"), "not a module name"),
        (("run", "sample_pipelines:arithmetic", "-p", "x"), "must be KEY=VALUE"),
        (("run", "sample_pipelines:arithmetic", "-p", "=1"), "must be KEY=VALUE"),
        (("run", "sample_pipelines:arithmetic", "-p", "x=1", "-p", "x=2"), "given twice"),
        (("run", "sample_pipelines:arithmetic", "-p", "z=1"), "has no parameter 'z'"),
        (("run", "sample_pipelines:arithmetic", "-p", "x=" + "9" * 5000), "--param x="),
        (("run", "sample_pipelines:arithmetic", "-p", "x=abc"), "is not int"),
        (("run", "sample_pipelines:slow", "-p", "seconds=nan"), "holds nan (NaN and infinities"),
        (("run", "sample_pipelines:slow", "-p", "seconds=-inf"), "holds -inf (NaN and"),
        (("run", "sample_pipelines:arithmetic", "--executor", "warp"), "unknown executor"),
        (("run", "sample_pipelines:arithmetic", "-w", "0"), "max_workers"),
        (("run", "sample_pipelines:arithmetic", "--address", "auto"), "address is for the ray"),
        (("show", "not-an-id"), "pipeline run id"),
        (("show", "0" * 32), "no run"),
        (("resume", "'; drop table runs; --"), "pipeline run id"),
        (("runs", "nope"), "no pipeline named 'nope'"),
        (("runs", "-n", "0"), "max_results"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home: Path, args: tuple[str, ...], message: str) -> None:
    result = keel("pipeline", *args)
    assert result.exit_code == 2, result.output
    assert message in error_line(result)


def test_show_refuses_a_plain_run_and_unknown_logs(home: Path) -> None:
    import keel as sdk

    with sdk.start_run(experiment="plain") as plain:
        pass
    result = keel("pipeline", "show", plain.run_id)
    assert result.exit_code == 2
    assert "not a pipeline run" in error_line(result)
    run = keel_json("pipeline", "run", "sample_pipelines:fan", "-p", "n=1", "--executor", "inline")
    result = keel("pipeline", "show", run["run_id"], "--logs", "ghost")
    assert result.exit_code == 2
    assert "no step 'ghost'" in error_line(result)
    result = keel("pipeline", "resume", run["run_id"])
    assert result.exit_code == 2
    assert "nothing to resume" in error_line(result)
