"""The demo's monitoring act, read back from the shared demo's home: drifted traffic fired
the alert (pending, then firing, recorded with its actions), the server rolled the
deployment back, the trigger's retraining run trained on the labelled traffic and its
promotion started a canary; the monitoring report was written as one HTML file.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import keel
from keel.demo.candidates import load_data
from keel.demo.drift import RULE, SHIFT, TRIGGER, drifted
from keel.demo.lifecycle import MODEL_NAME
from keel.demo.training import DEPLOYMENT, MIN_TRAFFIC_ROWS, STEPS

V1, V2, V3 = (f"{MODEL_NAME}/{v}" for v in (1, 2, 3))


@pytest.mark.slow
def test_the_alert_went_pending_then_firing_and_ran_both_actions(at_demo_home) -> None:
    out = at_demo_home.result.monitoring
    assert out is not None
    assert out.states[:2] == ("pending", "firing")
    alert = keel.get_alert(out.alert_id)
    assert (alert.rule, alert.deployment, alert.metric) == (RULE, DEPLOYMENT, "drift_share")
    assert alert.fired_at is not None
    assert alert.value is not None  # the latest evaluation's: it may have fallen since

    events = keel.get_alert_events(alert_id=out.alert_id)
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["pending", "firing"]
    assert events[0].value > 0.3  # it went pending, then fired, on breaches
    assert events[1].value > 0.3
    actions = {e.detail["action"]: dict(e.detail) for e in events if e.kind == "action"}
    assert actions["rollback"]["ok"] is True
    assert actions["rollback"]["stable"] == V1
    assert actions["trigger"]["ok"] is True
    assert actions["trigger"]["started"] == [out.dispatch_id]


@pytest.mark.slow
def test_the_rollback_is_in_the_deployments_history_by_the_scheduler(at_demo_home) -> None:
    out = at_demo_home.result.monitoring
    history = keel.get_deployment_history(DEPLOYMENT, 100)
    rollback = next(h for h in history if h.revision == out.rollback_revision)

    assert (rollback.action, rollback.actor) == ("rollback", "keel-scheduler")
    assert [(b.key, b.weight) for b in rollback.plan.live] == [(V1, 100.0)]
    before = next(h for h in history if h.revision == out.rollback_revision - 1)
    assert before.action == "promote"  # the challenger was serving when the drift came


@pytest.mark.slow
def test_the_triggered_retraining_used_the_labelled_traffic_and_ends_in_a_canary(
    at_demo_home,
) -> None:
    out = at_demo_home.result.monitoring
    (dispatch,) = [
        d for d in keel.pipelines.list_dispatches(TRIGGER) if d.dispatch_id == out.dispatch_id
    ]
    assert dispatch.source == "trigger"
    assert dispatch.run_id == out.retrain_run_id
    run = keel.get_pipeline_run(out.retrain_run_id)
    assert run.status == out.retrain_status == "finished"
    assert [s.node for s in run.steps] == list(STEPS)
    params = {k: json.loads(v) for k, v in run.params.items()}  # recorded as JSON text
    assert params["feedback_from"] == DEPLOYMENT
    assert params["reason"] == f"alert:{out.alert_id}"  # the trigger filled it in
    frame = keel.load_step_output(run.run_id, "load")
    traffic = frame[frame["source"] == "traffic"]
    assert MIN_TRAFFIC_ROWS <= len(traffic) <= out.feedback_rows
    assert set(traffic["split"]) == {"train", "validation"}

    assert out.retrain_version == 3
    assert keel.get_model_version(MODEL_NAME, 3).run_id == run.step("train").run_id
    assert out.retrain_promotion is not None
    assert out.retrain_promotion["outcome"] == "promoted"
    assert out.canary_started
    history = keel.get_deployment_history(DEPLOYMENT, 100)
    started = next(h for h in history if h.revision == out.retrain_promotion["rollout"]["revision"])
    assert (started.action, started.actor) == ("rollout.canary", "root")  # the child process
    assert {b.key: b.weight for b in started.plan.live} == {V1: 80.0, V3: 20.0}
    dep = keel.get_deployment(DEPLOYMENT)
    assert dep.rollout is not None
    assert (dep.rollout.strategy.value, dep.rollout.stable, dep.rollout.candidate) == (
        "canary", V1, V3
    )  # fmt: skip
    # the demo kept the drifted traffic flowing until the server judged the canary
    assert out.canary_outcome == dep.rollout.status.value
    assert out.canary_steps >= 1
    if out.canary_outcome == "promoted":
        assert dep.stable.key == V3
        assert history[-1].reason == f"canary passed all 3 steps: promoted {V3}"
    else:
        assert out.canary_outcome == "rolled-back", dep.rollout.reason
        assert dep.stable.key == V1


@pytest.mark.slow
def test_the_monitoring_report_is_one_self_contained_html_file(at_demo_home) -> None:
    out = at_demo_home.result.monitoring
    assert out.report_path is not None
    path = at_demo_home.result.home / "monitoring-report.html"
    assert out.report_path == str(path)
    html = path.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert DEPLOYMENT in html
    # nothing fetched when opened: no external script, stylesheet or image
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=[\"']https?:", html)
    assert not re.search(r"<img[^>]+src=[\"']https?:", html)
    assert f"report     {path}" in at_demo_home.output


@pytest.mark.slow
def test_the_output_tells_the_loop_in_order(demo) -> None:
    output = demo.output
    marks = [
        "Monitoring: drifted traffic, an alert, a rollback and a retraining",
        " pending: drift_share ",
        " firing: drift_share ",
        "rollback   by keel-scheduler",
        "retraining dispatch ",
        "event      action rollback ok",
        "event      action trigger ok",
        "canary rollout of breast-cancer-prod started",
        "The canary of version 3, under the drifted traffic",
        "canary     ",
        "report     ",
    ]
    at = [output.find(m) for m in marks]
    assert all(i >= 0 for i in at), dict(zip(marks, at, strict=True))
    assert at[:2] == sorted(at[:2])
    assert at[-2:] == sorted(at[-2:])
    assert demo.result.monitoring.failed_requests == 0, demo.result.monitoring.failures


# -- cheaper checks ------------------------------------------------------------------------


def test_drifted_scales_the_mean_and_worst_features_only() -> None:
    rows = load_data().X_val
    out = drifted(rows)
    changed = [c for c in rows.columns if not np.allclose(out[c], rows[c])]
    assert len(changed) == 20
    assert all(c.startswith(("mean ", "worst ")) for c in changed)
    np.testing.assert_allclose(out["mean radius"], rows["mean radius"] * SHIFT)
    assert rows["mean radius"].iloc[0] != out["mean radius"].iloc[0]  # a copy, not in place
