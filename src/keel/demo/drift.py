"""The demo's monitoring act: drifted traffic fires an alert that rolls back and retrains.

An alert rule on the deployment (``drift_share`` over a short window, two breaching
evaluations to fire) has two actions, ``rollback`` and ``trigger``; a pipeline trigger of
kind ``alert`` on that rule runs the training pipeline (``keel.demo.training``) with
``feedback_from`` set to the deployment. The demo then sends the held-out rows with 20
of their 30 features scaled up (the instrument drifted), logging each answer's true
label as feedback. ``keel server`` evaluates the rule every two seconds: the demo shows
the alert going pending then firing, the rollback the server made (deployment history),
and the retraining run the trigger started (in a child process) — trained on the
bundled data plus the labelled drifted traffic — ending in a canary of its version,
which the demo keeps the drifted traffic on until the server judges it. The monitoring
report of the deployment is written into the demo's home last.

Everything waits with a deadline; a loop that does not close is a ``Conflict`` saying
which part did not happen.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keel
from keel.demo import deploy_report, pipeline_report
from keel.demo.deploy_report import facts
from keel.demo.report import print_step
from keel.demo.traffic import Traffic
from keel.demo.training import DEPLOYMENT
from keel.errors import Conflict, NotFound
from keel.monitoring.alerts.entities import AlertState
from keel.store.clock import now_ms

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from rich.console import Console

    from keel.client.deployments import RestDeploymentStore
    from keel.demo.candidates import DemoData

__all__ = ["RULE", "TRIGGER", "MonitoringOutcome", "drifted", "run_monitoring"]

RULE = "breast-cancer-drift"
TRIGGER = "retrain-on-drift"
THRESHOLD = 0.3  # share of drifted features
WINDOW = "20s"
SHIFT = 1.6  # the drifted features are scaled by this
# Three clients at a gentle pace; the budgets bound the load if the loop never closes.
DRIFT_TRAFFIC: dict[str, Any] = {
    "concurrency": 3,
    "rate": 30.0,
    "max_requests": 3000,
    "max_seconds": 120.0,
}
ALERT_TIMEOUT_S = 90.0  # for the alert to fire, the rollback and the trigger to happen
RETRAIN_TIMEOUT_S = 240.0  # for the retraining run (a child process) to end
POLL_S = 0.5
_STATES = frozenset(state.value for state in AlertState)  # the event kinds that are states
REPORT_FILE = "monitoring-report.html"


@dataclass(frozen=True, kw_only=True)
class MonitoringOutcome:
    """What the monitoring act saw: the alert, the rollback, the retraining and the report."""

    rule: str
    trigger: str
    alert_id: str
    states: tuple[str, ...]  # the alert's states in order, from its events
    value: float | None  # drift_share when it fired
    rolled_back_to: str  # the stable backend after the rollback
    rollback_revision: int
    events: tuple[str, ...]  # the alert's event kinds, oldest first
    feedback_rows: int
    dispatch_id: str
    retrain_run_id: str
    retrain_status: str
    retrain_version: int | None
    retrain_promotion: dict[str, Any] | None
    canary: str  # the deployment's split after the retraining's promotion
    canary_started: bool
    canary_outcome: str = "none"  # how the retrained version's canary ended
    canary_steps: int = 0
    report_path: str | None = None
    failed_requests: int = 0
    failures: tuple[str, ...] = ()  # what the first failed requests got (TrafficCounts.failures)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """Return the loop in one line."""
        new = "no version" if self.retrain_version is None else f"version {self.retrain_version}"
        canary = f"its canary {self.canary_outcome}" if self.canary_started else "no canary"
        return (
            f"alert fired at drift_share {self.value or 0:.2f}, rolled back to "
            f"{self.rolled_back_to}, retrained {new}, {canary}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this outcome."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def drifted(rows: pd.DataFrame) -> pd.DataFrame:
    """Return ``rows`` with every ``mean …`` and ``worst …`` feature scaled by ``SHIFT``."""
    out = rows.copy()
    shifted = [c for c in out.columns if str(c).startswith(("mean ", "worst "))]
    out[shifted] = out[shifted] * SHIFT
    return out


def run_monitoring(
    console: Console,
    *,
    url: str,
    store: RestDeploymentStore,
    data: DemoData,
    home: Path,
    served: dict[str, Any],
) -> MonitoringOutcome:
    """Set up the rule and the trigger, drift the traffic, and follow the loop it starts."""
    import numpy as np

    print_step(console, "Monitoring: drifted traffic, an alert, a rollback and a retraining")
    _rule_and_trigger(console)
    rows, labels = drifted(data.X_val), np.asarray(data.y_val)
    before = store.get_deployment(DEPLOYMENT)
    served = _with_backends(dict(served), before)  # a rollback may go to any of them
    expected = {key: np.asarray(model.predict(rows)) for key, model in served.items()}
    facts(
        console,
        ("traffic", f"the held-out rows with 20 of 30 features × {SHIFT:g}, through "
                    "/invocations, each answer's true label logged as feedback"),
    )  # fmt: skip
    with Traffic(
        url, DEPLOYMENT, rows, labels, expected, routes=("invocations",),
        resolve=_registry_predictions(rows), **DRIFT_TRAFFIC,
    ) as traffic:  # fmt: skip
        seen = _follow_alert(console, store, traffic, before.revision)
        counts = traffic.stop()
        seen["feedback"] += _log_feedback(traffic, seen["logged"])
    alert = seen["alert"]
    events = keel.get_alert_events(alert_id=alert.alert_id)
    _print_events(console, events)
    # The states are the firing alert's own, from its events. Polling follows the newest
    # alert of the rule, and as the drift starts its window can cross the threshold and
    # fall back: an alert pending then resolved, before a second one goes pending and fires.
    states = tuple(e.kind for e in events if e.kind in _STATES)
    fired = next((e.value for e in events if e.kind == "firing"), seen["value"])
    retrain = _wait_for_retraining(console, seen["dispatch"])
    dep = store.get_deployment(DEPLOYMENT)
    rollout = dep.rollout
    canary_started = rollout is not None and rollout.running and rollout.strategy.value == "canary"
    facts(console, ("now", f"{dep.name} revision {dep.revision}: {deploy_report.split(dep)}"))
    promotion = retrain["outputs"].get("promote")
    registered = retrain["outputs"].get("register")
    canary_outcome, steps = "none", 0
    if canary_started and registered is not None and promotion is not None:
        canary_outcome, steps, dep, sent = _follow_canary(
            console, url, store, rows, labels, dict(served), registered, promotion["rollout"]
        )
        counts_failed = counts.failed + sent.failed
        failures = (*counts.failures, *sent.failures)
    else:
        counts_failed, failures = counts.failed, tuple(counts.failures)
    report_path = _write_report(console, home)
    return MonitoringOutcome(
        rule=RULE,
        trigger=TRIGGER,
        alert_id=alert.alert_id,
        states=states,
        value=fired,
        rolled_back_to=_stable_key(seen["rollback"].plan),
        rollback_revision=seen["rollback"].revision,
        events=tuple(e.kind for e in events),
        feedback_rows=seen["feedback"],
        dispatch_id=seen["dispatch"].dispatch_id,
        retrain_run_id=retrain["run_id"],
        retrain_status=retrain["status"],
        retrain_version=None if registered is None else int(registered["version"]),
        retrain_promotion=promotion,
        canary=deploy_report.split(dep),
        canary_started=canary_started,
        canary_outcome=canary_outcome,
        canary_steps=steps,
        report_path=None if report_path is None else str(report_path),
        failed_requests=counts_failed,
        failures=failures,
    )


def _follow_canary(
    console: Console,
    url: str,
    store: RestDeploymentStore,
    rows: pd.DataFrame,
    labels: Any,
    served: dict[str, Any],
    registered: dict[str, Any],
    rollout: dict[str, Any],
) -> tuple[str, int, Any, Any]:
    """Keep the drifted traffic flowing while the server judges the retrained version's
    canary; return its outcome, the judged steps, the deployment and the traffic counts."""
    import numpy as np

    from keel.demo.deployment import _watch
    from keel.registry.api import load_model

    print_step(console, f"The canary of version {registered['version']}, under the drifted traffic")
    key = f"{registered['name']}/{registered['version']}"
    served[key] = load_model(registered["uri"])
    served = _with_backends(served, store.get_deployment(DEPLOYMENT))
    expected = {k: np.asarray(model.predict(rows)) for k, model in served.items()}
    with Traffic(
        url, DEPLOYMENT, rows, labels, expected, routes=("invocations",),
        resolve=_registry_predictions(rows), **DRIFT_TRAFFIC,
    ) as traffic:  # fmt: skip
        dep = store.get_deployment(DEPLOYMENT)
        steps, dep = _watch(console, store, traffic, dep, seen=int(rollout["revision"]))
        counts = traffic.stop()
    rollout_now = dep.rollout
    outcome = rollout_now.status.value if rollout_now is not None else "none"
    why = (rollout_now.reason if rollout_now is not None else None) or ""
    facts(
        console,
        ("canary", f"{outcome}: {deploy_report.split(dep)}"),
        ("", f"why: {why}; {counts.sent} drifted requests, {counts.failed} failed"),
    )
    return outcome, len(steps), dep, counts


def _rule_and_trigger(console: Console) -> None:
    from keel.pipelines.schedules_api import add_trigger, delete_trigger

    # A rule left by an earlier demo in this home goes first, resolving its open alert
    # (one left firing when that demo's traffic stopped would swallow this drift).
    with contextlib.suppress(NotFound):
        keel.delete_alert_rule(RULE)
    rule = keel.add_alert_rule(
        RULE,
        deployment=DEPLOYMENT,
        metric="drift_share",
        op=">",
        threshold=THRESHOLD,
        window=WINDOW,
        for_=2,
        severity="critical",
        # Short: a second demo in this home resolves the first one's alert minutes, not
        # hours, before it drifts again, and its actions must not wait a long cooldown.
        cooldown="5s",
        notifiers=["log"],
        actions=["rollback", {"type": "trigger", "payload": {"reason": "drift"}}],
        description="drift on the breast-cancer model's inputs: roll back and retrain",
    )
    with contextlib.suppress(NotFound):  # a second demo in the same home
        delete_trigger(TRIGGER)
    add_trigger(
        TRIGGER,
        "keel.demo.training:training",
        "alert",
        RULE,
        params={"feedback_from": DEPLOYMENT, "reason": "{event_key}", "strategy": "canary"},
    )
    facts(
        console,
        ("rule", f"{rule.name}: {rule.metric} {rule.op} {rule.threshold:g} over {WINDOW} for "
                 f"{rule.for_} evaluations → actions rollback, trigger (every 2 s by the "
                 "server's scheduler)"),
        ("trigger", f"{TRIGGER}: on alert {RULE} run keel.demo.training:training with "
                    f"feedback_from={DEPLOYMENT}"),
    )  # fmt: skip


def _log_feedback(traffic: Traffic, logged: set[str]) -> int:
    """Log the true label of every right answer not logged yet; return how many."""
    ids, targets = [], []
    for backend in list(traffic.counts().answered):
        for request_id, label in traffic.labelled(backend):
            if request_id and request_id not in logged:
                ids.append(request_id)
                targets.append(float(label))
    if not ids:
        return 0
    keel.log_feedback(DEPLOYMENT, ids, targets)
    logged.update(ids)
    return len(ids)


def _follow_alert(
    console: Console, store: RestDeploymentStore, traffic: Traffic, revision: int
) -> dict[str, Any]:
    """Log feedback as answers come, and print the alert's states, the rollback and the
    trigger's dispatch as they happen; return them once all three did."""
    from keel.pipelines.schedules_api import list_dispatches

    seen: dict[str, Any] = {
        "states": [], "alert": None, "value": None, "rollback": None, "dispatch": None,
        "logged": set(), "feedback": 0,
    }  # fmt: skip
    deadline = time.monotonic() + ALERT_TIMEOUT_S
    # An earlier demo in this home left alerts and dispatches of the same names: only
    # what starts from now on is this demo's.
    since = now_ms() - 1000
    while time.monotonic() < deadline:
        seen["feedback"] += _log_feedback(traffic, seen["logged"])
        alerts = [a for a in keel.list_alerts(rule=RULE, limit=5) if a.started_at >= since]
        alert = alerts[0] if alerts else None
        if alert is not None and (not seen["states"] or seen["states"][-1] != alert.state.value):
            seen["states"].append(alert.state.value)
            seen["alert"], seen["value"] = alert, alert.value
            what = f"{alert.metric} {alert.value:.2f}" if alert.value is not None else ""
            facts(console, ("alert", f"{alert.alert_id} {alert.state.value}: {what} "
                                     f"({alert.breaches} breaching evaluation(s))"))  # fmt: skip
        if seen["rollback"] is None:
            entry = next(
                (h for h in store.deployment_history(DEPLOYMENT, limit=20)
                 if h.revision > revision and h.action == "rollback"),
                None,
            )  # fmt: skip
            if entry is not None:
                seen["rollback"] = entry
                back = f"{_stable_key(entry.plan)} serves 100% again"
                facts(console, ("rollback", f"by {entry.actor}, revision {entry.revision}: {back}"))
        if seen["dispatch"] is None:
            found = [
                d for d in list_dispatches(TRIGGER, source="trigger", limit=5)
                if d.started_at >= since
            ]  # fmt: skip
            if found:
                seen["dispatch"] = found[0]
                facts(console, ("retraining", f"dispatch {found[0].dispatch_id} started the "
                                              f"pipeline (process {found[0].pid})"))  # fmt: skip
        if seen["rollback"] is not None and seen["dispatch"] is not None:
            return seen
        time.sleep(POLL_S)
    missing = [k for k in ("alert", "rollback", "dispatch") if seen[k] is None]
    raise Conflict(
        f"the drift loop did not close in {ALERT_TIMEOUT_S:.0f} s: no {', no '.join(missing)} "
        f"(alert states seen: {seen['states'] or 'none'}; see `keel alerts events`)"
    )


def _with_backends(served: dict[str, Any], dep: Any) -> dict[str, Any]:
    """Return ``served`` with a loaded model for every backend of ``dep`` it lacks (a
    demo in a home used before meets versions of the earlier demos)."""
    from keel.registry.api import load_model

    for backend in dep.plan.backends:
        if backend.key not in served:
            served[backend.key] = load_model(f"models:/{backend.key}")
    return served


def _registry_predictions(rows: pd.DataFrame) -> Callable[[str], Any]:
    """Return a function giving a registered version's predictions of ``rows`` by its
    backend key: the alert's rollback goes to the last other stable version in the
    deployment's history, which a demo in a home used before may not have loaded."""
    import numpy as np

    from keel.registry.api import load_model

    def predict(key: str) -> Any:
        return np.asarray(load_model(f"models:/{key}").predict(rows))

    return predict


def _stable_key(plan: Any) -> str:
    """Return the key of a plan's backend with the most traffic (the stable one)."""
    return str(max(plan.live, key=lambda b: b.weight).key)


def _print_events(console: Console, events: list[Any]) -> None:
    """Print the alert's events as the alerts store recorded them, oldest first."""
    for event in events:
        detail = {k: v for k, v in dict(event.detail).items() if k not in ("action", "ok")}
        text = event.kind
        if event.kind == "action":
            text += f" {event.detail.get('action')} " + (
                "ok" if event.detail.get("ok") else "failed"
            )
        if detail:
            text += ": " + ", ".join(f"{k}={v}" for k, v in detail.items())
        facts(console, ("event", text[:300]))


def _wait_for_retraining(console: Console, dispatch: Any) -> dict[str, Any]:
    """Wait for the triggered pipeline run to end; print it; return its id, status, outputs."""
    from keel.pipelines.schedules_api import list_dispatches

    deadline = time.monotonic() + RETRAIN_TIMEOUT_S
    run_id = None
    with console.status("the retraining pipeline runs (a child process)", spinner="dots"):
        while time.monotonic() < deadline:
            current = next(
                (d for d in list_dispatches(TRIGGER, source="trigger", limit=20)
                 if d.dispatch_id == dispatch.dispatch_id),
                dispatch,
            )  # fmt: skip
            run_id = current.run_id or run_id
            if run_id is not None:
                info = keel.get_pipeline_run(run_id)
                if info.status != "running":
                    break
            if current.status in ("failed", "lost"):
                raise Conflict(
                    f"the retraining dispatch {current.dispatch_id} {current.status}: "
                    f"{current.error or 'no error recorded'}"
                )
            time.sleep(POLL_S)
        else:
            raise Conflict(
                f"the retraining run {run_id or '(not started)'} did not end in "
                f"{RETRAIN_TIMEOUT_S:.0f} s (`keel pipeline dispatches` shows it)"
            )
    outputs = pipeline_report.step_outputs(info)
    pipeline_report.print_steps(console, info, outputs)
    if "promote" in outputs:
        pipeline_report.print_promotion(console, outputs["promote"])
    return {"run_id": info.run_id, "status": info.status, "outputs": outputs}


def _write_report(console: Console, home: Path) -> Path | None:
    """Write the deployment's monitoring report (one HTML file) into the demo's home."""
    from keel.monitoring.report import monitoring_report
    from keel.monitoring.report_html import report_html

    report = monitoring_report(DEPLOYMENT, window="10m", bucket="20s")
    path = home / REPORT_FILE
    path.write_text(report_html(report), encoding="utf-8")
    facts(console, ("report", f"{path} (self-contained HTML: open it in a browser)"))
    return path
