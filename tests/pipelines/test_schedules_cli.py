"""``keel pipeline schedule | schedules | unschedule | pause | unpause | dispatches`` and
``keel pipeline trigger add | list | delete`` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.pipelines.schedule_support import write_flow
from typer.testing import CliRunner, Result

from keel.cli.main import app


def keel(*args: str) -> Result:
    """Run ``keel`` in-process as a fresh process would (nothing cached from the last)."""
    from tests.conftest import _reset

    _reset()
    return CliRunner().invoke(app, list(args))


def keel_json(*args: str) -> Any:
    result = keel(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def error_line(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_schedule_list_pause_unpause_unschedule(home: Path, tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    made = keel_json(
        "pipeline", "schedule", "nightly", "--cron", "0 3 * * *", "--pipeline", f"{flow}:rec",
        "-p", "tag=n", "--missed", "all", "--max-catchup", "3", "--tz", "Europe/Paris",
    )  # fmt: skip
    assert made["params"] == {"tag": "n"}
    assert made["timezone"] == "Europe/Paris"
    assert made["max_catchup"] == 3
    # Without --pipeline, the schedule keeps its pipeline and params and gets the new time.
    moved = keel_json("pipeline", "schedule", "nightly", "--cron", "30 4 * * *")
    assert moved["cron"] == "30 4 * * *"
    assert moved["params"] == {"tag": "n"}
    table = keel("pipeline", "schedules")
    assert table.exit_code == 0, table.output
    assert "nightly" in table.stdout
    assert "30 4 * * *" in table.stdout
    assert keel_json("pipeline", "pause", "nightly")["enabled"] is False
    assert "paused" in keel("pipeline", "schedules").stdout
    assert keel_json("pipeline", "unpause", "nightly")["enabled"] is True
    assert keel_json("pipeline", "schedules")["schedules"][0]["name"] == "nightly"
    assert keel("pipeline", "unschedule", "nightly").exit_code == 0
    assert "no schedules" in keel("pipeline", "schedules").stdout
    assert keel_json("pipeline", "dispatches") == {"dispatches": []}


def test_bad_input_is_one_error_line_with_exit_code_2(home: Path, tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    ref = f"{flow}:rec"
    cases = [
        (("--cron", "61 * * * *", "--pipeline", ref), "not a valid cron"),
        (("--cron", "0 3 30 2 *", "--pipeline", ref), "names no date that exists"),
        (("--cron", "0 3 * * *", "--pipeline", "nowhere.py:rec"), "cannot be loaded"),
        (("--cron", "0 3 * * *", "--pipeline", ref, "--tz", "Moon/Base"), "unknown time zone"),
        (("--cron", "0 3 * * *", "--pipeline", ref, "-p", "nope=1"), "no parameter 'nope'"),
        (("--cron", "0 3 * * *", "--pipeline", ref, "-p", "novalue"), "KEY=VALUE"),
        (("--cron", "0 3 * * *", "--pipeline", ref, "--missed", "maybe"), "missed-run policy"),
    ]
    for args, message in cases:
        line = error_line(keel("pipeline", "schedule", "s", *args))
        assert message in line, line
    line = error_line(
        keel("pipeline", "schedule", "../x", "--cron", "0 3 * * *", "--pipeline", ref)
    )
    assert "schedule name" in line
    assert "no pipeline schedule named 'ghost'" in error_line(
        keel("pipeline", "schedule", "ghost", "--cron", "0 3 * * *")
    )
    assert "ghost" in error_line(keel("pipeline", "pause", "ghost"))
    keel_json("pipeline", "schedule", "s", "--cron", "0 3 * * *", "--pipeline", ref)
    line = error_line(keel("pipeline", "schedule", "s", "--cron", "0 3 * * *", "--pipeline", ref))
    assert "exists" in line


def test_trigger_add_list_delete(home: Path, tmp_path: Path) -> None:
    flow = write_flow(tmp_path)
    ref = f"{flow}:rec"
    hook = keel("pipeline", "trigger", "add", "hook", "--pipeline", ref, "--on", "webhook")
    assert hook.exit_code == 0, hook.output
    assert "Keel-Trigger-Token: " in hook.stdout
    assert "/api/v1/pipelines/triggers/hook/fire" in hook.stdout
    added = keel_json(
        "pipeline", "trigger", "add", "retrain", "--pipeline", ref, "--on", "model_version",
        "--subject", "churn", "-p", "tag={version}",
    )  # fmt: skip
    assert added["params"] == {"tag": "{version}"}
    listed = keel_json("pipeline", "trigger", "list")["triggers"]
    assert [t["name"] for t in listed] == ["hook", "retrain"]
    assert all(t["token"] is None for t in listed)
    table = keel("pipeline", "trigger", "list", "--on", "model_version")
    assert "retrain" in table.stdout
    assert "hook" not in table.stdout
    bad = keel("pipeline", "trigger", "add", "x", "--pipeline", ref, "--on", "sms")
    assert "trigger kind 'sms'" in error_line(bad)
    bad = keel("pipeline", "trigger", "add", "x", "--pipeline", ref, "--on", "dataset")
    assert "needs a subject" in error_line(bad)
    assert keel("pipeline", "trigger", "delete", "hook").exit_code == 0
    assert "hook" in error_line(keel("pipeline", "trigger", "delete", "hook"))
