"""The schedules SDK on every backend (SQLite, PostgreSQL, a live server): the same calls,
the same answers, the same errors for bad input; every change audited."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from tests.pipelines.schedule_support import write_flow

import keel
import keel.pipelines as kp
from keel.errors import AlreadyExists, InvalidInput, NotFound


@pytest.fixture
def flow(backend: Any, tmp_path: Path) -> Path:
    return write_flow(tmp_path)


def test_schedule_list_pause_resume_delete(flow: Path) -> None:
    s = keel.schedule_pipeline(
        "nightly", f"{flow}:rec", "0 3 * * *", params={"sleep": 0.5, "tag": "n"}, missed="all"
    )
    assert s.pipeline == f"{flow.resolve()}:rec"
    assert s.params == {"sleep": "0.5", "tag": "n"}
    assert s.next_run_at is not None
    assert s.created_by
    with pytest.raises(AlreadyExists, match="nightly"):
        keel.schedule_pipeline("nightly", f"{flow}:rec", "0 3 * * *")
    replaced = keel.schedule_pipeline("nightly", f"{flow}:rec", "0 4 * * *", replace=True)
    assert replaced.cron == "0 4 * * *"
    assert [x.name for x in keel.list_schedules()] == ["nightly"]
    assert keel.pause_schedule("nightly").enabled is False
    assert keel.resume_schedule("nightly").next_run_at is not None
    keel.delete_schedule("nightly")
    assert keel.list_schedules() == []
    with pytest.raises(NotFound, match="nightly"):
        keel.pause_schedule("nightly")


def test_bad_schedules_are_refused_with_clear_messages(flow: Path, tmp_path: Path) -> None:
    ref = f"{flow}:rec"
    bad: list[tuple[tuple[Any, ...], dict[str, Any], str]] = [
        (("s", ref, "61 * * * *"), {}, "not a valid cron"),
        (("s", ref, "0 3 31 4 *"), {}, "names no date that exists"),
        (("s", ref, "* * *"), {}, "5 fields"),
        (("s", ref, "0 3 * * *"), {"timezone": "Nowhere/City"}, "unknown time zone"),
        (("s", f"{tmp_path / 'missing.py'}:rec", "0 3 * * *"), {}, "cannot be loaded"),
        (("s", f"{flow}:nothing", "0 3 * * *"), {}, "not a @keel.pipeline"),
        (("s", "no_such_module_x:p", "0 3 * * *"), {}, "cannot be loaded"),
        (("s", ref, "0 3 * * *"), {"params": {"nope": 1}}, "has no parameter 'nope'"),
        (("s", ref, "0 3 * * *"), {"params": {"sleep": "soon"}}, "sleep"),
        (("s", ref, "0 3 * * *"), {"params": {f"p{i}": 1 for i in range(200)}}, "at most 100"),
        (("s", ref, "0 3 * * *"), {"params": {"tag": "x" * 20_000}}, "at most 10000"),
        (("s", ref, "0 3 * * *"), {"params": {"tag": object()}}, "must be text"),
        (("s", ref, "0 3 * * *"), {"missed": "never"}, "missed-run policy"),
        (("s", ref, "0 3 * * *"), {"max_catchup": 10**6}, "max_catchup"),
        (("../../etc", ref, "0 3 * * *"), {}, "schedule name"),
        (("a b", ref, "0 3 * * *"), {}, "schedule name"),
        (("x" * 300, ref, "0 3 * * *"), {}, "schedule name"),
        (("s", ref, 5), {}, "cron"),
    ]
    for args, options, message in bad:
        with pytest.raises(InvalidInput, match=message):
            keel.schedule_pipeline(*args, **options)
    assert keel.list_schedules() == []


def test_triggers_through_the_sdk(flow: Path) -> None:
    hook = keel.add_trigger("hook", f"{flow}:rec", "webhook", params={"tag": "{commit}"})
    assert hook.token
    on_model = keel.add_trigger(
        "on-churn", f"{flow}:rec", "model_version", "churn", params={"tag": "{version}"}
    )
    assert on_model.token is None
    with pytest.raises(AlreadyExists):
        keel.add_trigger("hook", f"{flow}:rec", "webhook")
    with pytest.raises(InvalidInput, match="has no parameter"):
        keel.add_trigger("t", f"{flow}:rec", "alert", "*", params={"nope": "{rule}"})
    assert [t.name for t in keel.list_triggers()] == ["hook", "on-churn"]
    assert all(t.token is None for t in keel.list_triggers())
    assert [t.name for t in keel.list_triggers("webhook")] == ["hook"]
    keel.delete_trigger("hook")
    assert [t.name for t in kp.list_triggers()] == ["on-churn"]
    assert kp.list_dispatches() == []


def test_a_module_reference_remembers_the_working_directory(
    backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "myflows.py").write_text((write_flow(tmp_path)).read_text())
    monkeypatch.chdir(project)
    s = keel.schedule_pipeline("m", "myflows:rec", "0 3 * * *")
    assert s.pipeline == "myflows:rec"
    assert s.workdir == os.getcwd()


def test_schedule_changes_are_audited(keel_env: Any, tmp_path: Path) -> None:
    from keel.governance.sql_audit import SqlAuditStore
    from keel.stores import current_stores

    flow = write_flow(tmp_path)
    keel.schedule_pipeline("a", f"{flow}:rec", "0 3 * * *")
    keel.schedule_pipeline("a", f"{flow}:rec", "0 5 * * *", replace=True)
    keel.pause_schedule("a")
    keel.resume_schedule("a")
    keel.delete_schedule("a")
    entries = SqlAuditStore(current_stores().tracking.db).list_entries(action="pipeline_schedule")
    assert [e.action for e in entries] == [
        "pipeline_schedule.create",
        "pipeline_schedule.replace",
        "pipeline_schedule.pause",
        "pipeline_schedule.resume",
        "pipeline_schedule.delete",
    ]
    assert {e.object_id for e in entries} == {"a"}
