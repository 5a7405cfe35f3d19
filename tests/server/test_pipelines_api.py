"""The pipelines API (/api/v1/pipelines): schedules and triggers through a live server,
the REST store passing what the SQL store does, webhook calls with their token."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from tests.pipelines.schedule_support import records, wait_for, write_flow

from keel.errors import AlreadyExists, InvalidInput, NotFound, Unauthenticated
from keel.pipelines.schedule_store import new_schedule, new_trigger

API = "/api/v1/pipelines"


@pytest.fixture
def client(keel_env: Any, tmp_path: Path) -> Iterator[TestClient]:
    from keel.config import load_settings
    from keel.server import create_app

    app = create_app(settings=load_settings(tmp_path / "home"))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_schedules_are_created_listed_paused_resumed_and_deleted(client: TestClient) -> None:
    body = {"name": "nightly", "pipeline": "flows.py:train", "cron": "0 3 * * *"}
    r = client.post(
        f"{API}/schedules", json={**body, "params": {"n": "5"}, "timezone": "Europe/Paris"}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["missed"] == "latest"
    assert created["next_run_at"] > 0
    assert client.post(f"{API}/schedules", json=body).status_code == 409
    assert client.post(f"{API}/schedules", json={**body, "replace": True}).json()["params"] == {}
    assert [s["name"] for s in client.get(f"{API}/schedules").json()["schedules"]] == ["nightly"]
    paused = client.post(f"{API}/schedules/nightly/pause").json()
    assert paused["enabled"] is False
    assert paused["next_run_at"] is None
    assert client.post(f"{API}/schedules/nightly/resume").json()["enabled"] is True
    assert client.delete(f"{API}/schedules/nightly").status_code == 204
    r = client.get(f"{API}/schedules/nightly")
    assert r.status_code == 404
    assert r.json()["error_code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cron": "61 * * * *"}, "not a valid cron"),
        ({"cron": "0 3 30 2 *"}, "names no date that exists"),  # was a 500
        ({"cron": "every day"}, "5 fields"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "time zone"),
        ({"pipeline": "no-colon"}, "MODULE:NAME"),
        ({"name": "../x"}, "schedule name"),
        ({"name": "<script>"}, "schedule name"),
        ({"missed": "some"}, "missed-run policy"),
        ({"max_catchup": 0}, "max_catchup"),
        ({"executor": "cluster"}, "executor"),
        ({"params": {"1bad": "x"}}, "identifier"),
    ],
)
def test_bad_schedules_are_a_400_naming_the_problem(
    client: TestClient, change: dict[str, Any], message: str
) -> None:
    body = {"name": "s", "pipeline": "flows.py:train", "cron": "0 3 * * *", **change}
    r = client.post(f"{API}/schedules", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]


def test_huge_bodies_are_refused(client: TestClient) -> None:
    body = {"name": "s", "pipeline": "flows.py:train", "cron": "0 3 * * *"}
    many = {f"p{i}": "x" for i in range(500)}
    assert client.post(f"{API}/schedules", json={**body, "params": many}).status_code == 400
    big = {"p": "x" * 20_000}
    assert client.post(f"{API}/schedules", json={**body, "params": big}).status_code == 400
    assert client.post(f"{API}/schedules", json={**body, "name": "n" * 10_000}).status_code == 400


def test_a_webhook_runs_its_pipeline_only_with_its_token(
    client: TestClient, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    out = tmp_path / "runs.jsonl"
    body = {
        "name": "hook",
        "pipeline": f"{flow}:rec",
        "kind": "webhook",
        "params": {"path": str(out), "tag": "{commit}"},
        "executor": "inline",
    }
    r = client.post(f"{API}/triggers", json=body)
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert token
    assert client.get(f"{API}/triggers/hook").json()["token"] is None
    fire = f"{API}/triggers/hook/fire"
    assert client.post(fire, json={"payload": {"commit": "abc"}}).status_code == 401
    wrong = {"Keel-Trigger-Token": token[:-1] + ("A" if token[-1] != "A" else "B")}
    assert client.post(fire, json={}, headers=wrong).status_code == 401
    assert client.post(f"{API}/triggers/nope/fire", headers=wrong).status_code == 404
    r = client.post(
        fire, json={"payload": {"commit": "abc"}}, headers={"Keel-Trigger-Token": token}
    )
    assert r.status_code == 202, r.text
    [dispatch_id] = r.json()["dispatches"]

    def finished() -> Any:
        found = client.get(f"{API}/dispatches", params={"name": "hook"}).json()["dispatches"]
        return found if found and found[0]["status"] != "running" else None

    [dispatch] = wait_for(finished)
    assert dispatch["dispatch_id"] == dispatch_id
    assert dispatch["status"] == "finished"
    assert [r["tag"] for r in records(out)] == ["abc"]
    assert client.get(f"{API}/triggers/hook").json()["fired"] == 1
    # a payload that cannot fill the params starts nothing: the caller is told (was a 202
    # with no dispatch and no reason)
    too_long = {"payload": {"commit": "x" * 20_000}}
    r = client.post(fire, json=too_long, headers={"Keel-Trigger-Token": token})
    assert r.status_code == 400, r.text
    assert "trigger 'hook' started nothing: param 'tag'" in r.json()["message"]
    hook = client.get(f"{API}/triggers/hook").json()
    assert (hook["fired"], hook["last_error"]) == (1, r.json()["message"].split(": ", 1)[1])


def test_the_rest_store_does_what_the_sql_store_does(keel_env: Any, tmp_path: Path) -> None:
    from tests.live_server import running_server

    from keel.client.http import KeelHttp
    from keel.client.pipelines import RestScheduleStore, fire_webhook

    with running_server(tmp_path / "server-home") as url:
        http = KeelHttp(url)
        try:
            store = RestScheduleStore(http)
            created = store.create_schedule(new_schedule("a", "flows.py:t", "*/5 * * * *"))
            assert created.next_run_at is not None
            with pytest.raises(AlreadyExists):
                store.create_schedule(new_schedule("a", "flows.py:t", "*/5 * * * *"))
            assert store.set_schedule_enabled("a", False).enabled is False
            assert [s.name for s in store.list_schedules()] == ["a"]
            hook = store.create_trigger(new_trigger("h", "flows.py:t", "webhook"))
            assert hook.token
            store.create_trigger(new_trigger("m", "flows.py:t", "model_version", "churn"))
            assert [t.name for t in store.list_triggers(kind="model_version")] == ["m"]
            with pytest.raises(Unauthenticated):
                fire_webhook(http, "h", "wrong")
            assert store.list_dispatches() == []
            with pytest.raises(InvalidInput, match="trigger kind"):
                store.list_triggers(kind="sms")
            with pytest.raises(InvalidInput, match="schedule name"):
                store.get_schedule("../../auth/users")
            store.delete_schedule("a")
            store.delete_trigger("m")
            with pytest.raises(NotFound):
                store.get_trigger("m")
        finally:
            http.close()


def test_a_live_server_runs_schedules_and_version_triggers(
    keel_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole loop on a real ``keel server``: its scheduler starts the schedule's runs
    and a model version registered through it fires the retraining trigger once."""
    import uuid

    from tests.conftest import _reset

    import keel
    import keel.pipelines as kp
    from keel.config import load_settings
    from keel.pipelines.schedule_runner import _launchers
    from keel.server import create_app
    from keel.serving._uvicorn import serving
    from keel.stores import current_stores

    flow = write_flow(tmp_path)
    out = tmp_path / "runs.jsonl"
    home = tmp_path / "server-home"
    app = create_app(settings=load_settings(home, tracking_uri=f"sqlite:///{home / 'keel.db'}"))
    # The lifespan on, so the server's scheduler runs as under `keel server`.
    with serving(app, lifespan="on", what="the schedules server", thread_name="keel-h6") as url:
        monkeypatch.setenv("KEEL_TRACKING_URI", url)
        _reset()
        try:
            keel.schedule_pipeline(
                "often",
                f"{flow}:rec",
                "* * * * * *",
                params={"path": str(out), "tag": "scheduled"},
                executor="inline",
            )
            keel.add_trigger(
                "retrain",
                f"{flow}:rec",
                "model_version",
                "churn",
                params={"path": str(out), "tag": "retrain {model}@{version}"},
                executor="inline",
            )

            def finished(name: str) -> Any:
                done = [d for d in kp.list_dispatches(name) if d.status == "finished"]
                return done or None

            [first, *_] = wait_for(lambda: finished("often"), timeout=90)
            keel.pause_schedule("often")
            assert keel.get_pipeline_run(first.run_id).status == "finished"

            stores = current_stores()
            experiment = stores.tracking.create_experiment(f"e-{uuid.uuid4().hex}")
            run = stores.tracking.create_run(
                experiment.experiment_id, name="r", user="u", start_time=1
            )
            fields = {
                "source": f"runs:/{run.run_id}/model",
                "artifact_digest": "ab" * 32,
                "flavor": "sklearn",
                "created_by": "u",
            }
            stores.registry.create_model_version("churn", fields, create_model=True)
            [fired] = wait_for(lambda: finished("retrain"), timeout=90)
            assert fired.event_key == "model_version:1"
            wait_for(lambda: all(d.status != "running" for d in kp.list_dispatches()))
            tags = [r["tag"] for r in records(out)]
            assert tags.count("retrain churn@1") == 1
            assert "scheduled" in tags
        finally:
            for launcher in list(_launchers.values()):
                launcher.stop()
            _reset()


def test_with_auth_on_admins_add_triggers_and_a_webhook_still_needs_its_token(
    keel_env: Any, tmp_path: Path
) -> None:
    from keel.config import load_settings
    from keel.governance.auth import Role, auth_store
    from keel.server import create_app
    from keel.stores import open_stores

    settings = load_settings(tmp_path / "home")
    stores = open_stores(settings)
    auth = auth_store(stores)
    auth.create_user("eve", role=Role.ADMIN)
    auth.create_user("ed", role=Role.EDITOR)
    auth.create_user("vic")
    editor = {"Authorization": f"Bearer {auth.create_token('eve').token}"}
    plain_editor = {"Authorization": f"Bearer {auth.create_token('ed').token}"}
    viewer = {"Authorization": f"Bearer {auth.create_token('vic').token}"}
    app = create_app(settings=settings, stores=stores, auth=True)
    body = {"name": "hook", "pipeline": "flows.py:train", "kind": "webhook"}
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post(f"{API}/triggers", json=body, headers=viewer).status_code == 403
        # the server would run the code a trigger names: an admin's call, not an editor's
        assert client.post(f"{API}/triggers", json=body, headers=plain_editor).status_code == 403
        schedule = {"name": "s", "pipeline": "flows.py:train", "cron": "0 3 * * *"}
        assert (
            client.post(f"{API}/schedules", json=schedule, headers=plain_editor).status_code == 403
        )
        r = client.post(f"{API}/triggers", json=body, headers=editor)
        assert r.status_code == 201, r.text
        token = r.json()["token"]
        assert client.get(f"{API}/triggers", headers=viewer).status_code == 200
        fire = f"{API}/triggers/hook/fire"
        assert client.post(fire, headers={"Keel-Trigger-Token": token}).status_code == 401
        r = client.post(fire, headers={**editor, "Keel-Trigger-Token": "wrong"})
        assert r.status_code == 401
        assert "wrong token" in r.json()["message"]
    from keel.governance.sql_audit import SqlAuditStore

    [entry] = SqlAuditStore(stores.tracking.db).list_entries(action="pipeline_trigger")
    assert entry.actor == "eve"
