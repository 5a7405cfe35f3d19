"""Triggers: an alert firing, a new model or dataset version, or a webhook starts a
pipeline run, once per event, with the event's fields in its params."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.pipelines.schedule_support import SQL_BACKENDS, open_sql_stores, records, write_flow

from keel.errors import AlreadyExists, InvalidInput, NotFound
from keel.pipelines.dispatch import Launcher
from keel.pipelines.schedule_runner import launcher_for
from keel.pipelines.schedule_store import new_trigger
from keel.pipelines.sql_schedules import SqlScheduleStore
from keel.pipelines.triggers import fire_trigger, poll_versions, render_params


@pytest.fixture(params=SQL_BACKENDS)
def sql_stores(
    request: pytest.FixtureRequest, keel_env: Any, monkeypatch: pytest.MonkeyPatch
) -> Any:
    return open_sql_stores(request, monkeypatch)


def _version(stores: Any, model: str) -> int:
    """Register a new version of ``model`` (from a fresh run) and return its number."""
    import uuid

    experiment = stores.tracking.create_experiment(f"e-{uuid.uuid4().hex}").experiment_id
    run = stores.tracking.create_run(experiment, name="r", user="u", start_time=1)
    fields = {
        "source": f"runs:/{run.run_id}/model",
        "artifact_digest": "ab" * 32,
        "flavor": "sklearn",
        "created_by": "u",
    }
    return stores.registry.create_model_version(model, fields, create_model=True).version


def test_a_new_model_version_runs_the_pipeline_once_with_its_version(
    sql_stores: Any, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    out = tmp_path / "runs.jsonl"
    store = SqlScheduleStore(sql_stores.tracking.db)
    _version(sql_stores, "churn")  # there before the trigger: never fires it
    store.create_trigger(
        new_trigger(
            "retrain-on-churn",
            f"{flow}:rec",
            "model_version",
            "churn",
            params={"path": str(out), "tag": "{model}@{version}"},
            executor="inline",
        )
    )
    launcher = Launcher(sql_stores)
    assert poll_versions(sql_stores, launcher) == []
    assert _version(sql_stores, "churn") == 2
    _version(sql_stores, "other")
    started = poll_versions(sql_stores, launcher)
    assert len(started) == 1
    assert poll_versions(sql_stores, launcher) == []  # once per version
    assert launcher.wait(60)
    assert [r["tag"] for r in records(out)] == ["churn@2"]
    trigger = store.get_trigger("retrain-on-churn")
    assert trigger.fired == 1
    assert trigger.last_status == "finished"
    [dispatch] = store.list_dispatches(source="trigger")
    assert dispatch.run_id == trigger.last_run_id
    assert dispatch.event_key == "model_version:2"
    # Two versions at once: two runs, in version order.
    _version(sql_stores, "churn")
    _version(sql_stores, "churn")
    assert len(poll_versions(sql_stores, launcher)) == 2
    assert launcher.wait(60)
    assert sorted(r["tag"] for r in records(out)) == ["churn@2", "churn@3", "churn@4"]


def test_a_new_dataset_version_fires_its_trigger(sql_stores: Any, tmp_path: Path) -> None:
    from keel.store.schema import datasets

    flow = write_flow(tmp_path)
    out = tmp_path / "runs.jsonl"
    store = SqlScheduleStore(sql_stores.tracking.db)
    store.create_trigger(
        new_trigger(
            "on-data",
            f"{flow}:rec",
            "dataset",
            "customers",
            params={"path": str(out), "tag": "{dataset}:{digest}"},
            executor="inline",
        )
    )
    with sql_stores.tracking.db.write() as conn:
        conn.execute(
            datasets.insert().values(
                dataset_id="d" * 32, name="customers", digest="f" * 64, created_at=5
            )
        )
    launcher = Launcher(sql_stores)
    assert len(poll_versions(sql_stores, launcher)) == 1
    assert poll_versions(sql_stores, launcher) == []
    assert launcher.wait(60)
    assert [r["tag"] for r in records(out)] == ["customers:" + "f" * 64]


def test_an_alert_fires_the_triggers_on_its_rule_and_on_every_rule(
    sql_stores: Any, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    out = tmp_path / "runs.jsonl"
    store = SqlScheduleStore(sql_stores.tracking.db)
    for name, subject in (("on-drift", "churn-drift"), ("on-any", "*"), ("on-other", "latency")):
        store.create_trigger(
            new_trigger(
                name,
                f"{flow}:rec",
                "alert",
                subject,
                params={"path": str(out), "tag": f"{name}:{{rule}}:{{severity}}"},
                executor="inline",
            )
        )
    started = fire_trigger(
        sql_stores, "alert", "churn-drift", {"severity": "critical", "event_key": "firing-1"}
    )
    assert len(started) == 2
    # The same firing again starts nothing; an unmatched rule starts only the "*" trigger.
    assert fire_trigger(sql_stores, "alert", "churn-drift", {"event_key": "firing-1"}) == []
    assert len(fire_trigger(sql_stores, "alert", "disk", {})) == 1
    assert launcher_for(sql_stores).wait(60)
    tags = sorted(r["tag"] for r in records(out))
    assert tags == [
        "on-any:churn-drift:critical",
        "on-any:disk:{severity}",
        "on-drift:churn-drift:critical",
    ]


def test_a_failing_triggered_run_is_recorded_on_the_trigger(
    sql_stores: Any, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    store = SqlScheduleStore(sql_stores.tracking.db)
    store.create_trigger(new_trigger("bad", f"{flow}:broken", "alert", "*", executor="inline"))
    assert len(fire_trigger(sql_stores, "alert", "r", {})) == 1
    assert launcher_for(sql_stores).wait(60)
    trigger = store.get_trigger("bad")
    assert trigger.last_status == "failed"
    assert "the step exploded" in trigger.last_error


def test_webhook_triggers_get_a_token_kept_only_as_a_digest(sql_stores: Any) -> None:
    from sqlalchemy import select

    from keel.store.schema_scheduling import pipeline_triggers

    store = SqlScheduleStore(sql_stores.tracking.db)
    created = store.create_trigger(new_trigger("hook", "flows.py:rec", "webhook"))
    assert created.token is not None
    assert len(created.token) >= 40
    assert store.get_trigger("hook").token is None
    with sql_stores.tracking.db.read() as conn:
        stored = conn.execute(select(pipeline_triggers.c.token_hash)).scalar()
    assert created.token not in stored
    assert store.webhook_matches("hook", created.token)
    assert not store.webhook_matches("hook", created.token[:-1] + "x")
    store.create_trigger(new_trigger("alerting", "flows.py:rec", "alert", "*"))
    with pytest.raises(NotFound, match="not a webhook"):
        store.webhook_matches("alerting", "x")


def test_trigger_definitions_are_checked_and_audited(sql_stores: Any) -> None:
    from keel.governance.sql_audit import SqlAuditStore

    store = SqlScheduleStore(sql_stores.tracking.db)
    store.create_trigger(new_trigger("t1", "m:p", "model_version", "churn"))
    with pytest.raises(AlreadyExists, match="t1"):
        store.create_trigger(new_trigger("t1", "m:p", "alert", "*"))
    bad = [
        (("t", "m:p", "sms", "x"), "trigger kind 'sms' must be one of"),
        (("t", "m:p", "model_version", None), "needs a subject"),
        (("t", "m:p", "model_version", "*"), "only an alert trigger"),
        (("t", "m:p", "webhook", "x"), "takes no subject"),
        (("../etc", "m:p", "alert", "*"), "trigger name '../etc'"),
        (("t", "nocolon", "alert", "*"), "MODULE:NAME"),
        (("t", "m:p", "alert", "a\nb"), "printable"),
    ]
    for args, message in bad:
        with pytest.raises(InvalidInput, match=message):
            new_trigger(*args)
    with pytest.raises(InvalidInput, match="kind"):
        fire_trigger(sql_stores, "sms", "x", {})
    with pytest.raises(InvalidInput, match="payload"):
        fire_trigger(sql_stores, "alert", "x", {str(i): i for i in range(1000)})
    store.delete_trigger("t1")
    with pytest.raises(NotFound):
        store.get_trigger("t1")
    audit = SqlAuditStore(sql_stores.tracking.db).list_entries(action="pipeline_trigger")
    actions = [(e.action, e.object_id) for e in audit]
    assert actions == [("pipeline_trigger.create", "t1"), ("pipeline_trigger.delete", "t1")]


def test_params_are_filled_from_the_event() -> None:
    filled = render_params(
        {"v": "{version}", "m": "x-{model}-{missing}"}, {"version": 3, "model": "c"}
    )
    assert filled == {"v": "3", "m": "x-c-{missing}"}
    with pytest.raises(InvalidInput, match="over"):
        render_params({"v": "{big}"}, {"big": "x" * 20_000})
