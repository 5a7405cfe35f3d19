"""End to end: a real keel server (uvicorn on 127.0.0.1, with its lifespan) evaluates the
rules on its scheduler — firing, webhook received, rollback done, resolved — while a
broken rule is recorded and crashes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import KeelEnv, _reset
from tests.deploy._control import register_versions
from tests.monitoring.alerts.alerts_receivers import http_receiver

import keel
from keel.monitoring.jobs import server_jobs, set_figure_source

# webhooks here reach receivers on 127.0.0.1, which Keel refuses unless allow-listed
pytestmark = pytest.mark.usefixtures("outbound_loopback")

WAIT_S = 60.0  # a bound on each wait, not a timing assertion


class Driven:
    """A figure source the test drives: one error_rate per deployment, or an error."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.calls = 0

    def __call__(self, stores: Any, deployment: str, *, window_s: float, now_ms: int) -> dict:
        self.calls += 1
        value = self.values.get(deployment)
        if isinstance(value, Exception):
            raise value
        return {} if value is None else {"error_rate": value}


def _wait_for(what: str, check: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"not within {WAIT_S:g} s: {what}")


@pytest.fixture
def figures() -> Iterator[Driven]:
    driven = Driven()
    set_figure_source(driven)
    try:
        yield driven
    finally:
        set_figure_source(None)


def test_the_server_fires_notifies_rolls_back_and_resolves_with_a_broken_rule_beside(
    keel_env: KeelEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures: Driven
) -> None:
    from keel.config import load_settings
    from keel.server import create_app
    from keel.serving._uvicorn import serving

    monkeypatch.setenv("KEEL_ALERT_INTERVAL", "0.2")
    _reset()
    home = tmp_path / "server-home"
    app = create_app(settings=load_settings(home, tracking_uri=f"sqlite:///{home / 'keel.db'}"))
    with (
        http_receiver() as hook,
        serving(
            app, lifespan="on", what="the alerts test server", thread_name="keel-alerts"
        ) as url,
    ):
        monkeypatch.setenv("KEEL_TRACKING_URI", url)
        _reset()
        register_versions("churn", 2)
        keel.create_deployment("churn-prod", "models:/churn/1")
        keel.rollout("churn-prod", "models:/churn/2")  # blue-green: switched by the server
        _wait_for(
            "churn/2 stable", lambda: keel.get_deployment("churn-prod").stable.key == "churn/2"
        )
        figures.values = {"churn-prod": 0.5, "broken-dep": RuntimeError("figures exploded")}
        keel.add_alert_rule("broken", deployment="broken-dep", metric="error_rate", op=">",
                            threshold=0.1, notifiers=[])  # fmt: skip
        keel.add_alert_rule(
            "churn-errors", deployment="churn-prod", metric="error_rate", op=">", threshold=0.1,
            for_=2, notifiers=[{"type": "webhook", "url": f"{hook.url}/hook"}],
            actions=["rollback"],
        )  # fmt: skip
        _wait_for("the webhook", lambda: hook.requests)
        (firing,) = hook.bodies()
        assert (firing["event"], firing["rule"], firing["value"]) == ("firing", "churn-errors", 0.5)
        _wait_for("the rollback", lambda: keel.get_deployment("churn-prod").stable.key == "churn/1")
        last = keel.get_deployment_history("churn-prod")[-1]
        assert (last.action, last.actor) == ("rollback", "keel-scheduler")
        calls = figures.calls
        _wait_for("more evaluations", lambda: figures.calls > calls + 4)
        assert [b["event"] for b in hook.bodies()] == ["firing"]  # once, not every tick
        figures.values["churn-prod"] = 0.01
        _wait_for("the resolve", lambda: keel.list_alerts(state="resolved", rule="churn-errors"))
        _wait_for("the resolve's webhook", lambda: len(hook.requests) == 2)
        assert [b["event"] for b in hook.bodies()] == ["firing", "resolved"]
        kinds = [e.kind for e in keel.get_alert_events(rule="churn-errors")]
        assert kinds == ["pending", "firing", "notified", "action", "resolved", "notified"]
        (error,) = keel.get_alert_events(rule="broken")  # reported once, not every tick
        assert "figures exploded" in error.detail["error"]
        status = app.state.scheduler.status["alerts.evaluate"]
        assert status.failures == 0
        assert status.runs > 5
        _reset()


def test_a_server_on_another_server_evaluates_nothing(keel_env: KeelEnv) -> None:
    class Remote:
        tracking = object()  # no database: a REST tracking store

    assert [j.name for j in server_jobs(Remote())] == ["monitoring.figures"]  # type: ignore[arg-type]
    from keel.stores import current_stores

    figures, sampler, alerts = server_jobs(current_stores())
    assert (figures.name, figures.exclusive) == ("monitoring.figures", False)
    assert (sampler.name, sampler.exclusive) == ("monitoring.health-sampler", False)
    assert (alerts.name, alerts.exclusive, alerts.every_s) == ("alerts.evaluate", True, 15.0)


def test_the_alert_interval_is_the_servers_own_setting(keel_env: KeelEnv) -> None:
    from keel.config import load_settings
    from keel.server.lifespan import server_scheduler
    from keel.stores import current_stores

    keel_env.home.mkdir(parents=True, exist_ok=True)
    (keel_env.home / "config.toml").write_text("alert_interval = 2.5\n", encoding="utf-8")
    scheduler = server_scheduler(current_stores(), load_settings(keel_env.home))
    (alerts,) = [job for job in scheduler.jobs if job.name == "alerts.evaluate"]
    assert alerts.every_s == 2.5
