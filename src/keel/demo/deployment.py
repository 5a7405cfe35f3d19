"""The demo's deployment act: serve the champion, send traffic, canary a challenger, judge it.

The training pipeline's promotion created ``breast-cancer-prod`` in ``prod`` serving the
champion. The demo starts ``keel server`` on its home (127.0.0.1, a free port, in a thread
of this process, with its deployments data plane), which serves it, and sends live HTTP
traffic from the held-out rows (``keel.demo.traffic``). It then runs the pipeline with a
longer search: its challenger passes the gates and its promotion starts a canary with
short steps; the server's deployment controller moves it step by step, each step gated
on the live error rate and p99 latency of the canary against the stable version. The
demo keeps the traffic flowing, prints every step and its gate as the controller records
it, and ends with the promotion or the automatic rollback, read back from the
deployment's history.

The demo's own changes go through the server's REST API (the store ``keel deploy`` uses
against a server); the pipeline's promotion writes the metadata database, and the
server's controller applies the new revision within a second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.demo import deploy_report, pipeline_report
from keel.demo.report import print_step
from keel.demo.traffic import Traffic, TrafficCounts
from keel.demo.training import CANARY, DEPLOYMENT, ENVIRONMENT, LONGER_TRIALS
from keel.errors import Conflict, NotFound

if TYPE_CHECKING:
    from rich.console import Console

    from keel.client.deployments import RestDeploymentStore
    from keel.demo.candidates import DemoData
    from keel.deploy.entities import Deployment, HistoryEntry, Rollout

__all__ = [
    "CANARY",
    "DEPLOYMENT",
    "ENVIRONMENT",
    "TRAFFIC",
    "DeploymentOutcome",
    "GateStep",
    "Served",
    "deployments_of",
    "keel_server",
    "run_deployment",
]

# A few clients at a gentle pace: a demo, not a benchmark. The budgets bound the load
# even if the rollout never ends.
TRAFFIC: dict[str, Any] = {
    "concurrency": 4,
    "rate": 40.0,
    "max_requests": 2500,
    "max_seconds": 150.0,
}
CHALLENGE = {"n_trials": LONGER_TRIALS, "strategy": "canary"}
WARM_UP_ANSWERS = 40  # right answers from the champion before the canary starts
AFTER_ANSWERS = 20  # and from the final stable version after the rollout ends
POLL_S = 0.25


@dataclass(frozen=True)
class Served:
    """A registered version the demo deploys, and the fitted model behind it."""

    model_name: str
    version: int
    run_name: str
    model: Any

    @property
    def key(self) -> str:
        """The backend key (``model/version``) the data plane names it by."""
        return f"{self.model_name}/{self.version}"

    @property
    def uri(self) -> str:
        """The ``models:/name/version`` URI."""
        return f"models:/{self.model_name}/{self.version}"


@dataclass(frozen=True)
class GateStep:
    """One judged canary step: its weight, verdict, why, and the figures it was judged on.

    ``canary`` and ``stable`` hold ``requests``, ``errors``, ``error_rate`` and ``p99_ms``
    as the server measured them during the step (the gate's own figures where the
    deployment recorded them, else the server's live figures just before the verdict).
    Where the stable had too few requests in the step, ``stable`` is the baseline the gate
    compared against: the stable's figures of the step before.
    """

    revision: int
    step: int  # 1-based
    weight: float  # the canary's share of traffic during the step, percent
    action: str  # the history action the verdict recorded: canary.step, promote, rollback
    passed: bool
    reason: str
    canary: Mapping[str, Any] | None = None
    stable: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this step."""
        out = dict(self.__dict__)
        for side in ("canary", "stable"):
            out[side] = None if out[side] is None else dict(out[side])
        return out


@dataclass(frozen=True, kw_only=True)
class DeploymentOutcome:
    """What the deployment act did: the deployment, the canary's verdicts and the traffic."""

    name: str
    environment: str
    champion: str  # backend keys
    challenger: str
    outcome: str  # the rollout's final status: promoted, rolled-back, failed, aborted,
    # or refused (the promotion's gates) / none (the search found nothing new)
    reason: str
    serving: str  # the backend serving 100% at the end
    revision: int
    steps: tuple[GateStep, ...]
    traffic: TrafficCounts
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    challenge_run_id: str = ""  # the pipeline run that made the challenger
    promotion: dict[str, Any] | None = None  # its promote step's record
    # backend key -> the fitted model, for every version served (not in to_dict)
    models: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this outcome."""
        return {
            "name": self.name,
            "environment": self.environment,
            "champion": self.champion,
            "challenger": self.challenger,
            "outcome": self.outcome,
            "reason": self.reason,
            "serving": self.serving,
            "revision": self.revision,
            "steps": [s.to_dict() for s in self.steps],
            "traffic": {
                "sent": self.traffic.sent,
                "answered": dict(self.traffic.answered),
                "correct": dict(self.traffic.correct),
                "by_route": dict(self.traffic.by_route),
                "failed": self.traffic.failed,
            },
            "history": list(self.history),
            "challenge_run_id": self.challenge_run_id,
            "promotion": self.promotion,
        }


@contextmanager
def keel_server(home: Path) -> Iterator[str]:
    """Run ``keel server`` on ``home`` in a thread (lifespan on: the data plane runs)."""
    from keel.config import load_settings
    from keel.server import create_app
    from keel.serving._uvicorn import serving

    # Auth off: the server is the demo's own, on loopback, for the length of the demo.
    app = create_app(settings=load_settings(home), auth=False)
    with serving(app, lifespan="on", what="the demo's Keel server", thread_name="keel-demo") as url:
        yield url


@contextmanager
def deployments_of(url: str) -> Iterator[RestDeploymentStore]:
    from keel.client.deployments import RestDeploymentStore
    from keel.client.http import KeelHttp

    http = KeelHttp(url)
    try:
        yield RestDeploymentStore(http)
    finally:
        http.close()


def run_deployment(
    console: Console,
    *,
    url: str,
    store: RestDeploymentStore,
    data: DemoData,
    champion: Served,
) -> DeploymentOutcome:
    """Serve ``champion`` under live traffic, run the longer search, and follow the canary
    its promotion starts; return what happened."""
    import numpy as np

    from keel.demo.training_runs import run_training

    rows, labels = data.X_val, np.asarray(data.y_val)
    dep = _deploy(store, champion)
    deploy_report.print_deployed(console, dep, url)
    expected = {champion.key: np.asarray(champion.model.predict(rows))}
    models = {champion.key: champion.model}
    with Traffic(url, DEPLOYMENT, rows, labels, expected, **TRAFFIC) as traffic:
        traffic.wait_for(champion.key, WARM_UP_ANSWERS, timeout=60)
        deploy_report.print_warm(
            console, traffic.counts(), champion.key, clients=TRAFFIC["concurrency"],
            rate=TRAFFIC["rate"],
        )  # fmt: skip
        print_step(
            console,
            f"Canary of a challenger: a {CHALLENGE['n_trials']}-trial search, promoted "
            "through the gates, with live analysis",
        )
        before = store.get_deployment(DEPLOYMENT).revision
        with console.status("running the pipeline with a longer search", spinner="dots"):
            challenge = run_training({**CHALLENGE, "canary": CANARY})
        pipeline_report.print_steps(console, challenge.info, challenge.outputs)
        promotion = challenge.promotion or {}
        if promotion:
            pipeline_report.print_promotion(console, promotion)
        # A promote step cached from an earlier demo in this home started nothing now.
        fresh = challenge.info.step("promote").status == "finished"
        started = fresh and (promotion.get("rollout") or {}).get("action") == "rollout"
        version = challenge.version
        challenger_key = "" if version is None else f"{champion.model_name}/{version}"
        if started and version is not None:
            from keel.registry.api import load_model

            challenger = Served(
                champion.model_name, version, challenge.outputs["train"]["model"],
                load_model(f"models:/{champion.model_name}/{version}"),
            )  # fmt: skip
            traffic.expect(challenger.key, np.asarray(challenger.model.predict(rows)))
            models[challenger.key] = challenger.model
            dep = store.get_deployment(DEPLOYMENT)
            deploy_report.print_canary_started(console, dep, CANARY)
            steps, dep = _watch(console, store, traffic, dep, seen=before)
        else:
            steps, dep = [], store.get_deployment(DEPLOYMENT)
        traffic.wait_for(dep.stable.key, AFTER_ANSWERS, timeout=30)
        counts = traffic.stop()
    history = store.deployment_history(DEPLOYMENT, limit=100)
    rollout = dep.rollout if started else None
    if started:
        status = rollout.status.value if rollout is not None else "none"
        reason = (rollout.reason if rollout is not None else None) or ""
    elif promotion.get("outcome") == "refused":
        status, reason = "refused", "; ".join(promotion.get("reasons") or [])
    elif not fresh:
        status, reason = "none", "the promotion is cached from an earlier run of the pipeline"
    else:
        status, reason = "none", "the longer search found no better model"
    outcome = DeploymentOutcome(
        name=dep.name,
        environment=dep.environment,
        champion=champion.key,
        challenger=challenger_key,
        outcome=status,
        reason=reason,
        serving=dep.stable.key,
        revision=dep.revision,
        steps=tuple(steps),
        traffic=counts,
        history=tuple(h.to_dict() for h in history),
        challenge_run_id=challenge.info.run_id,
        promotion=promotion or None,
        models=models,
    )
    deploy_report.print_traffic(console, outcome, current=dep)
    deploy_report.print_history(console, history)
    deploy_report.print_outcome(console, outcome)
    return outcome


def _deploy(store: RestDeploymentStore, champion: Served) -> Deployment:
    """Return the deployment serving ``champion`` (the promotion created it); create it,
    or switch it over, if the home holds something else.

    A second demo in the same home finds the first one's deployment: the champion goes
    in blue-green (warmed beside the old stable, then switched at once).
    """
    try:
        dep = store.get_deployment(DEPLOYMENT)
    except NotFound:
        return store.create_deployment(
            DEPLOYMENT,
            champion.uri,
            environment=ENVIRONMENT,
            description="The demo's breast-cancer classifier in production",
        )
    if dep.rollout is not None and dep.rollout.running:
        dep = store.abort(DEPLOYMENT)  # left running by an interrupted demo
    if dep.stable.key == champion.key:
        return dep
    return store.start_rollout(DEPLOYMENT, champion.uri, strategy="blue-green")


def _figures(stats: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not stats:
        return None
    return {k: stats.get(k) for k in ("requests", "errors", "error_rate", "p99_ms")}


def _watch(
    console: Console, store: RestDeploymentStore, traffic: Traffic, dep: Deployment, *, seen: int
) -> tuple[list[GateStep], Deployment]:
    """Follow the canary until it ends; print and return each judged step.

    The steps are read from the deployment's history (what the controller recorded); the
    figures of a step are the gate's own where the rollout kept them, else the server's
    live figures of that step polled just before its verdict. Bounded: past the longest
    the canary can take, it is aborted and ``Conflict`` raised.
    """
    rollout = dep.rollout
    if rollout is None:  # start_rollout always returns one; the check keeps types honest
        raise Conflict(f"deployment {DEPLOYMENT!r} has no rollout to follow")
    weights = [float(w) for w in CANARY["steps"]]
    limit = CANARY["interval_s"] * len(weights) * (1 + CANARY["max_wait"]) + 30
    deadline = time.monotonic() + limit
    index = 0  # ``seen``: the revision before the canary started
    live: dict[str, Any] = {}
    steps: list[GateStep] = []
    with deploy_report.canary_progress(console, len(weights)) as progress:
        while True:
            dep = store.get_deployment(DEPLOYMENT)
            if dep.revision != seen:
                for entry in _entries_after(store, seen):
                    step = _judged(entry, index, weights, dep, live, rollout)
                    if step is not None:
                        steps.append(step)
                        index += 1
                        deploy_report.print_gate(progress.console, step, len(weights))
                        progress.advance()
                seen = dep.revision
            if dep.rollout is None or not dep.rollout.running:
                return steps, dep
            if time.monotonic() > deadline:
                store.abort(DEPLOYMENT)
                raise Conflict(
                    f"the canary of {rollout.candidate} did not finish in {limit:.0f} s "
                    f"(too little traffic reached it?); it was aborted"
                )
            live = {b["backend"]: b for b in store.live_stats(DEPLOYMENT).get("backends", [])}
            progress.show(dep, traffic.counts(), rollout.candidate)
            time.sleep(POLL_S)


def _entries_after(store: RestDeploymentStore, revision: int) -> list[HistoryEntry]:
    return [h for h in store.deployment_history(DEPLOYMENT, limit=50) if h.revision > revision]


def _judged(
    entry: HistoryEntry,
    index: int,
    weights: list[float],
    dep: Deployment,
    live: Mapping[str, Any],
    started: Rollout,
) -> GateStep | None:
    """Return the judged step a history entry records (None for other changes)."""
    if entry.action not in ("canary.step", "promote", "rollback", "failed", "abort"):
        return None
    passed = entry.action in ("canary.step", "promote")
    rollout = dep.rollout
    gate = (rollout.summary.get("last_gate") if rollout is not None else None) or {}
    exact = entry.action == "canary.step" and gate.get("step") == index
    if exact and entry.revision == dep.revision:
        figures = gate.get("figures") or {}
        canary, stable = _figures(figures.get("canary")), _figures(figures.get("stable"))
    else:
        canary, stable = _figures(live.get(started.candidate)), _figures(live.get(started.stable))
        if not stable or (stable["requests"] or 0) < CANARY["min_requests"]:
            # The gate compared against the stable's figures of the step before (at 100%
            # the stable has no traffic of its own): show those, as the gate did.
            baseline = rollout.summary.get("baseline") if rollout is not None else None
            stable = _figures(baseline) or stable
    return GateStep(
        revision=entry.revision,
        step=index + 1,
        weight=weights[min(index, len(weights) - 1)],
        action=entry.action,
        passed=passed,
        reason=entry.reason or "",
        canary=canary,
        stable=stable,
    )
