"""What the deployments pages show, built from the store's entities (no HTML here).

The templates get plain dicts: the live split as bar segments, the rollout as progress
(step i of n, when the next step is due, the gate and its last results), the A/B figures
and verdict, the shadow's agreement, and the history as rows. Live figures come from the
server's data plane (``app.state.deployment_router``) when it serves the deployment.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from keel.deploy.entities import Deployment, HistoryEntry, Rollout, Strategy
from keel.deploy.traffic import BackendStats, Role, TrafficPlan
from keel.errors import KeelError

__all__ = ["LIVE_WINDOW_S", "history_rows", "live_figures", "rollout_view", "split_segments"]

LIVE_WINDOW_S = 60  # the live figures cover the last minute
_PALETTE = 6  # segment colours in the stylesheet, seg-0 … seg-5


def split_segments(plan: TrafficPlan) -> list[dict[str, Any]]:
    """Return the live backends as bar segments: key, model, version, role, weight, colour."""
    return [
        {
            "key": b.key,
            "model": b.model,
            "version": b.version,
            "role": b.role.value,
            "weight": b.weight,
            "colour": i % _PALETTE,
        }
        for i, b in enumerate(plan.live)
    ]


def split_text(plan: TrafficPlan) -> str:
    """Return the live split as one line, e.g. ``churn/3 95% · churn/4 5%`` (and the shadow
    that mirrors it, if any)."""
    text = " · ".join(f"{b.key} {b.weight:g}%" for b in plan.live)
    return f"{text} + shadow {plan.shadow.key}" if plan.shadow is not None else text


def version_rows(
    plan: TrafficPlan, figures: Mapping[str, BackendStats] | None
) -> list[dict[str, Any]]:
    """Return every backend (live, standby, shadow) with its role, weight and figures."""
    rows = []
    for b in plan.all_backends():
        role = Role.SHADOW if plan.shadow is not None and b == plan.shadow else b.role
        stats = None if figures is None else figures.get(b.key)
        rows.append(
            {
                "key": b.key,
                "model": b.model,
                "version": b.version,
                "role": role.value,
                "weight": b.weight,
                "stats": None if stats is None else _stats_dict(stats),
            }
        )
    return rows


def _stats_dict(stats: BackendStats) -> dict[str, Any]:
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "error_rate": stats.error_rate,
        "p99_ms": stats.p99_ms,
        "agreement": stats.extra.get("agreement"),
    }


def live_figures(app_state: Any, name: str) -> dict[str, BackendStats] | None:
    """Return the data plane's figures for ``name`` over the last minute, or None when this
    server routes no deployments (or not this one)."""
    router = getattr(app_state, "deployment_router", None)
    if router is None:
        return None
    try:
        figures = router.stats(name, time.time() - LIVE_WINDOW_S)
    except KeelError:
        return None
    return dict(figures) or None


def rollout_view(rollout: Rollout | None, now_ms: int) -> dict[str, Any] | None:
    """Return the rollout as progress: steps, step i of n, next step due, gate, results."""
    if rollout is None:
        return None
    config = dict(rollout.config)
    view: dict[str, Any] = {
        "strategy": rollout.strategy.value,
        "status": rollout.status.value,
        "running": rollout.running,
        "stable": rollout.stable,
        "candidate": rollout.candidate,
        "reason": rollout.reason,
        "started_revision": rollout.id,
        "step_started_at": rollout.step_started_at,
        "steps": [],
        "step": None,
        "of": None,
        "due_at": None,
        "gate": None,
        "last_gate": None,
        "config": config,
        "details": None,
    }
    if rollout.strategy is Strategy.CANARY:
        _canary(view, rollout, config)
    elif rollout.strategy is Strategy.BLUE_GREEN:
        labels = ("warm the candidate as standby", "switch 100% to it")
        done = 0 if rollout.running else len(labels)
        view["steps"] = [_step(label, i, done) for i, label in enumerate(labels)]
        view["step"], view["of"] = min(done + 1, len(labels)), len(labels)
    elif rollout.strategy is Strategy.SHADOW:
        duration = config.get("duration_s")
        timed = isinstance(duration, (int, float)) and not isinstance(duration, bool)
        view["details"] = f"mirrors for {duration:g} s" if timed else "mirrors until stopped"
        if rollout.running and timed:
            view["due_at"] = rollout.step_started_at + int(duration * 1000)
    elif rollout.strategy is Strategy.AB:
        view["details"] = _ab_details(config)
    view["overdue"] = view["due_at"] is not None and view["due_at"] < now_ms
    return view


def _ab_details(config: dict[str, Any]) -> str | None:
    from keel.deploy.analysis import ABConfig

    known = {k: v for k, v in config.items() if k in ABConfig.__dataclass_fields__}
    try:
        ab = ABConfig.parse(known)
    except KeelError:
        return None
    return (
        f"{ab.outcome} outcomes to {ab.goal}, alpha {ab.alpha:g}, at least {ab.min_samples} "
        f"per variant; variants assigned by {ab.sticky_key!r}"
    )


def _step(label: str, index: int, current: int) -> dict[str, Any]:
    state = "done" if index < current else "current" if index == current else "todo"
    return {"label": label, "state": state}


def _canary(view: dict[str, Any], rollout: Rollout, config: dict[str, Any]) -> None:
    from keel.deploy.canary import CanaryConfig

    try:
        parsed = CanaryConfig.parse(config)
    except KeelError:
        return  # a configuration this Keel cannot read: shown raw by the template
    steps = parsed.steps
    current = rollout.step if rollout.running else len(steps)
    view["steps"] = [_step(f"{w:g}%", i, current) for i, w in enumerate(steps)]
    view["step"], view["of"] = min(rollout.step + 1, len(steps)), len(steps)
    view["interval_s"] = parsed.interval_s
    if rollout.running:
        view["due_at"] = rollout.step_started_at + int(parsed.interval_s * 1000)
    gate = parsed.gate
    view["gate"] = {
        "min_requests": gate.min_requests,
        "max_error_rate_increase": gate.max_error_rate_increase,
        "max_error_rate": gate.max_error_rate,
        "max_p99_ratio": gate.max_p99_ratio,
        "p99_slack_ms": gate.p99_slack_ms,
        "metrics": [{k: v for k, v in vars(m).items() if v is not None} for m in gate.metrics],
        "max_wait": gate.max_wait,
        "on_no_traffic": gate.on_no_traffic,
    }
    last = rollout.summary.get("last_gate")
    if isinstance(last, Mapping):
        figures = last.get("figures") if isinstance(last.get("figures"), Mapping) else {}
        view["last_gate"] = {
            "step": last.get("step"),
            "passed": last.get("passed"),
            "canary": _figure_row(figures.get("canary")),
            "stable": _figure_row(figures.get("stable")),
        }


def _figure_row(data: Any) -> dict[str, Any] | None:
    if not isinstance(data, Mapping):
        return None
    return {k: data.get(k) for k in ("requests", "errors", "error_rate", "p99_ms")}


def shadow_view(
    plan: TrafficPlan, rollout: Rollout | None, figures: Mapping[str, BackendStats] | None
) -> dict[str, Any] | None:
    """Return the shadow's agreement with the live model: live figures first, else what
    the rollout kept when it ended; None without a shadow."""
    if plan.shadow is not None and figures and plan.shadow.key in figures:
        stats = figures[plan.shadow.key]
        return {"backend": plan.shadow.key, "live": True, **_stats_dict(stats)}
    kept = rollout.summary.get("shadow") if rollout is not None else None
    if rollout is not None and rollout.strategy is Strategy.SHADOW and isinstance(kept, Mapping):
        return {
            "backend": rollout.candidate,
            "live": False,
            **{k: kept.get(k) for k in ("requests", "errors", "error_rate", "p99_ms", "agreement")},
        }
    if plan.shadow is not None:
        return {"backend": plan.shadow.key, "live": False, "requests": None, "agreement": None}
    return None


def history_rows(entries: Sequence[HistoryEntry]) -> list[dict[str, Any]]:
    """Return the history newest first, each change with its resulting split."""
    return [
        {
            "revision": e.revision,
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "split": split_segments(e.plan),
            "split_text": split_text(e.plan),
            "reason": e.reason,
        }
        for e in reversed(entries)
    ]


def list_row(dep: Deployment) -> dict[str, Any]:
    """Return one row of the deployments list."""
    rollout = dep.rollout
    return {
        "name": dep.name,
        "environment": dep.environment,
        "strategy": None if rollout is None else rollout.strategy.value,
        "rollout_status": None if rollout is None else rollout.status.value,
        "split": split_segments(dep.plan),
        "split_text": split_text(dep.plan),
        "status": dep.status,
        "revision": dep.revision,
        "updated_at": dep.updated_at,
    }
