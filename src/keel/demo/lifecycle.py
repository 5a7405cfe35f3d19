"""``keel demo``: training as a pipeline, its cached rerun, serving and a canary, then
monitoring that closes the loop (drift → alert → rollback → retraining → canary).

1. The training pipeline (``keel.demo.training``: load → validate → tune → train →
   evaluate → register → promote) trains the champion: a seeded Optuna search over three
   model families, each trial a nested run, the best trained, registered with a model
   card (its lineage reaching the train step and its datasets) and promoted to ``prod``
   through its gates, which creates the deployment.
2. The same run again: every step a cache hit.
3. ``keel server`` on the demo's home serves it under live traffic; a longer search
   finds a challenger, whose promotion starts a canary judged step by step
   (``keel.demo.deployment``).
4. A drift alert with actions rollback and trigger; drifted traffic fires it, the
   server rolls back and starts the retraining pipeline, whose promotion starts a
   canary of the new version, judged under the drifted traffic (``keel.demo.drift``).

The demo runs against a Keel home of its own (a fresh temporary folder unless one is
given), so it never touches the user's runs and models; the home is kept afterwards so the
CLI can show what the demo made.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keel
from keel import config
from keel.demo import pipeline_report, report
from keel.demo.candidates import DATASET, RANDOM_STATE
from keel.demo.deploy_report import facts
from keel.demo.home import using_home
from keel.demo.names import (
    ALIAS,
    DEPLOYMENT,
    FIRST_TRIALS,
    MODEL_NAME,
    PIPELINE,
    STEPS,
)
from keel.demo.training_runs import EXPERIMENT, TrainingRun, run_training, trials_of
from keel.errors import IntegrityError

if TYPE_CHECKING:
    from rich.console import Console

    from keel.demo.candidates import DemoData
    from keel.demo.deployment import DeploymentOutcome
    from keel.demo.drift import MonitoringOutcome

__all__ = [
    "ALIAS",
    "EXPERIMENT",
    "MODEL_NAME",
    "DemoResult",
    "TrainingRun",
    "run_demo",
    "run_training",
    "using_home",
]

# Shorter intervals than a production server's, so the demo's alert fires in seconds.
DEMO_SETTINGS = {"KEEL_ALERT_INTERVAL": "2", "KEEL_PREDICTION_LOG_FLUSH_INTERVAL": "1"}


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """What a demo made: where, the pipeline runs, and the champion it registered."""

    home: Path
    tracking_uri: str
    experiment: str
    pipeline_run_id: str
    rerun_run_id: str
    rerun_seconds: float
    trial_run_ids: tuple[str, ...]
    best_run_id: str  # the train step's run, which the version was registered from
    best_run_name: str  # the model it trained, in words
    model_name: str
    version: int
    alias: str
    champion_metrics: dict[str, float] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    deployment: DeploymentOutcome | None = None  # None when run with deploy=False
    monitoring: MonitoringOutcome | None = None

    @property
    def champion_uri(self) -> str:
        """The ``models:/name@alias`` URI that loads the champion."""
        return f"models:/{self.model_name}@{self.alias}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this result."""
        return {
            "home": str(self.home),
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
            "pipeline_run_id": self.pipeline_run_id,
            "rerun_run_id": self.rerun_run_id,
            "rerun_seconds": self.rerun_seconds,
            "trial_run_ids": list(self.trial_run_ids),
            "best_run_id": self.best_run_id,
            "best_run_name": self.best_run_name,
            "model_name": self.model_name,
            "version": self.version,
            "alias": self.alias,
            "champion_uri": self.champion_uri,
            "champion_metrics": dict(self.champion_metrics),
            "elapsed_seconds": self.elapsed_seconds,
            "deployment": None if self.deployment is None else self.deployment.to_dict(),
            "monitoring": None if self.monitoring is None else self.monitoring.to_dict(),
        }


def run_demo(
    home: Path | None = None, *, console: Console | None = None, deploy: bool = True
) -> DemoResult:
    """Run the demo in ``home`` (a new temporary folder when None); return what it made.

    With ``deploy`` (the default) the champion is then served by a ``keel server``
    started for the demo, a challenger canaried under live traffic, and the drift loop
    shown. Progress and results are printed on ``console`` (stdout when None); progress
    bars animate only when the console is a terminal.
    """
    from rich.console import Console

    from keel.errors import require

    require("optuna", "hpo")  # the tune step's search, before anything is made
    console = console or Console()
    started = time.perf_counter()
    fresh = home is None
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="keel-demo-"))
    else:
        home = Path(home).expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
    with using_home(home, settings=DEMO_SETTINGS):
        return _run(home, console, fresh=fresh, started=started, deploy=deploy)


def _run(home: Path, console: Console, *, fresh: bool, started: float, deploy: bool) -> DemoResult:
    from keel.demo.candidates import load_data

    tracking_uri = config.get_settings().resolved_tracking_uri()
    report.print_header(console, home, fresh=fresh, tracking_uri=tracking_uri)

    report.print_step(console, "Data")
    data = load_data()
    report.print_data(console, data, DATASET, RANDOM_STATE)

    params = {"n_trials": FIRST_TRIALS, "strategy": "blue-green"}
    report.print_step(console, f"Training as a pipeline: {' → '.join(STEPS)}")
    first = _train(console, params, data)
    registered = first.outputs["register"]
    version = int(registered["version"])

    report.print_step(console, "The same pipeline again: every step a cache hit")
    again = run_training(params)
    pipeline_report.print_rerun(console, again.info, again.seconds)

    deployment = monitoring = None
    if deploy:
        deployment, monitoring = _serve(console, home, data, first)
    steps = report.next_steps(
        home,
        experiment=EXPERIMENT,
        model_name=MODEL_NAME,
        version=version,
        compare=list(first.trial_run_ids[:2]),
        deployment=None if deployment is None else deployment.name,
        pipeline_run=first.info.run_id,
    )
    report.print_next_steps(console, home, steps, fresh=fresh)

    elapsed = time.perf_counter() - started
    trained = first.outputs["train"]
    console.print()
    ending = "" if deployment is None else f" The canary ended {deployment.outcome}."
    if monitoring is not None:
        ending += f" Drift: {monitoring.summary()}."
    console.print(
        f"[bold green]Done[/] in {elapsed:.1f} s. Version {version} ({trained['model']}, "
        f"roc_auc {trained['metrics']['roc_auc']:.4f}) was the first {ALIAS}.{ending}",
        highlight=False,
    )
    return DemoResult(
        home=home,
        tracking_uri=tracking_uri,
        experiment=EXPERIMENT,
        pipeline_run_id=first.info.run_id,
        rerun_run_id=again.info.run_id,
        rerun_seconds=again.seconds,
        trial_run_ids=first.trial_run_ids,
        best_run_id=trained["run_id"],
        best_run_name=trained["model"],
        model_name=MODEL_NAME,
        version=version,
        alias=ALIAS,
        champion_metrics=dict(trained["metrics"]),
        elapsed_seconds=elapsed,
        deployment=deployment,
        monitoring=monitoring,
    )


def _train(console: Console, params: dict[str, Any], data: DemoData) -> TrainingRun:
    """Run the pipeline the first time and print every step, the trials and the version."""
    from keel.demo.training import training

    facts(
        console,
        ("pipeline", f"{PIPELINE} ({training.ref}), {params['n_trials']} trials, each step "
                     "in a worker process with its own run"),
    )  # fmt: skip
    with console.status("running the pipeline", spinner="dots"):
        run = run_training(params)
    pipeline_report.print_steps(console, run.info, run.outputs)
    trials = trials_of(run.info)
    trained = run.outputs["train"]
    pipeline_report.print_trials(console, trials, _best_value(trials, trained))
    registered = run.outputs["register"]
    console.print()
    graph = keel.get_lineage(registered["uri"], direction="up", depth=2)
    pipeline_report.print_lineage(console, graph)
    pipeline_report.print_promotion(console, run.outputs["promote"])
    _check_alias(console, registered, trained, data)
    card = keel.get_model_card(MODEL_NAME, int(registered["version"]))
    console.print()
    report.print_card(
        console, card, title=f"Model card of {MODEL_NAME} version {registered['version']}"
    )
    return run


def _best_value(trials: list[keel.Run], trained: dict[str, Any]) -> float | None:
    values = [t.metrics.get("roc_auc") for t in trials]
    return trained["metrics"]["roc_auc"] if trained["metrics"]["roc_auc"] in values else None


def _check_alias(
    console: Console, registered: dict[str, Any], trained: dict[str, Any], data: DemoData
) -> None:
    """Prove the champion alias loads the version the pipeline trained: its predictions on
    validation rows equal those of the model logged on the train step's run."""
    import numpy as np

    uri = f"models:/{MODEL_NAME}@{ALIAS}"
    holder = keel.resolve_model_version(uri)
    if holder.version != registered["version"]:
        facts(console, ("alias", f"{ALIAS} is version {holder.version}"))
        return
    rows = data.X_val.head(5)
    served = np.asarray(keel.load_model(uri).predict(rows))
    logged = np.asarray(keel.load_model(f"runs:/{trained['run_id']}/model").predict(rows))
    if not np.array_equal(served, logged):
        raise IntegrityError(
            f"{uri} predicts {served.tolist()} on 5 validation rows, but the model logged "
            f"by the train step predicts {logged.tolist()}"
        )
    facts(
        console,
        ("loaded", f"{uri}, digests verified, predicts what the train step's model does:"),
        ("", ", ".join(data.class_names[int(i)] for i in served)),
    )


def _serve(
    console: Console, home: Path, data: DemoData, first: TrainingRun
) -> tuple[DeploymentOutcome, MonitoringOutcome | None]:
    """Acts 3 and 4, on one keel server: the canary of a challenger, then the drift loop."""
    from keel.demo.deployment import Served, deployments_of, keel_server, run_deployment
    from keel.demo.drift import run_monitoring

    version = int(first.outputs["register"]["version"])
    champion = Served(MODEL_NAME, version, first.outputs["train"]["model"], _load(version))
    report.print_step(console, f"Serving the {ALIAS} as '{DEPLOYMENT}' (prod)")
    with keel_server(home) as url, deployments_of(url) as store:
        facts(console, ("server", f"keel server on {url} (in this process)"))
        deployment = run_deployment(console, url=url, store=store, data=data, champion=champion)
        monitoring = run_monitoring(
            console, url=url, store=store, data=data, home=home, served=deployment.models
        )
    return deployment, monitoring


def _load(version: int) -> Any:
    return keel.load_model(f"models:/{MODEL_NAME}/{version}")
