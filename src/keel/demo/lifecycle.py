"""``keel demo``: train candidates, track them, compare them, register and crown the best,
then deploy it and canary a challenger under live traffic (``keel.demo.deployment``).

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
from keel.demo import report
from keel.demo.candidates import (
    CANDIDATES,
    DATASET,
    RANDOM_STATE,
    VALIDATION_FRACTION,
    Candidate,
    DemoData,
)
from keel.demo.home import using_home
from keel.errors import IntegrityError

if TYPE_CHECKING:
    from rich.console import Console

    from keel.demo.deployment import DeploymentOutcome
    from keel.tracking.entities import Run
    from keel.tracking.fluent import ActiveRun

__all__ = [
    "ALIAS",
    "EXPERIMENT",
    "MODEL_NAME",
    "RANKING",
    "DemoResult",
    "run_demo",
    "using_home",
]

EXPERIMENT = "breast-cancer"
MODEL_NAME = "breast-cancer-classifier"
ALIAS = "champion"
# How candidates are ranked: validation ROC AUC, then log loss, then name (deterministic).
RANKING = ("metrics.roc_auc DESC", "metrics.log_loss ASC", "attributes.name ASC")
TRAIN_DATASET = "breast_cancer_train"
VALIDATION_DATASET = "breast_cancer_validation"
DEMO_TAG = "keel demo"
INTENDED_USE = (
    "A demonstration of Keel's lifecycle, trained on scikit-learn's bundled Wisconsin "
    "breast-cancer data (569 samples). Not for clinical use."
)


@dataclass(frozen=True, kw_only=True)
class DemoResult:
    """What a demo made: where, which runs, and the champion it registered."""

    home: Path
    tracking_uri: str
    experiment: str
    sweep_run_id: str
    run_ids: tuple[str, ...]
    best_run_id: str
    best_run_name: str
    model_name: str
    version: int
    alias: str
    champion_metrics: dict[str, float] = field(default_factory=dict)
    elapsed_seconds: float = 0.0
    deployment: DeploymentOutcome | None = None  # None when run with deploy=False

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
            "sweep_run_id": self.sweep_run_id,
            "run_ids": list(self.run_ids),
            "best_run_id": self.best_run_id,
            "best_run_name": self.best_run_name,
            "model_name": self.model_name,
            "version": self.version,
            "alias": self.alias,
            "champion_uri": self.champion_uri,
            "champion_metrics": dict(self.champion_metrics),
            "elapsed_seconds": self.elapsed_seconds,
            "deployment": None if self.deployment is None else self.deployment.to_dict(),
        }


def run_demo(
    home: Path | None = None, *, console: Console | None = None, deploy: bool = True
) -> DemoResult:
    """Run the demo in ``home`` (a new temporary folder when None); return what it made.

    With ``deploy`` (the default) the champion is then deployed behind a ``keel server``
    started for the demo, and a challenger canaried under live traffic. Progress and
    results are printed on ``console`` (stdout when None); progress bars animate only
    when the console is a terminal.
    """
    from rich.console import Console

    console = console or Console()
    started = time.perf_counter()
    fresh = home is None
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="keel-demo-"))
    else:
        home = Path(home).expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
    with using_home(home):
        return _run(home, console, fresh=fresh, started=started, deploy=deploy)


@dataclass(frozen=True)
class _Trained:
    candidate: Candidate
    run_id: str
    model: Any
    metrics: dict[str, float]


def _run(home: Path, console: Console, *, fresh: bool, started: float, deploy: bool) -> DemoResult:
    from keel.demo.candidates import load_data

    tracking_uri = config.get_settings().resolved_tracking_uri()
    report.print_header(console, home, fresh=fresh, tracking_uri=tracking_uri)

    report.print_step(console, "Data")
    data = load_data()
    report.print_data(console, data, DATASET, RANDOM_STATE)

    report.print_step(
        console, f"Training {len(CANDIDATES)} candidates, a run each, in experiment '{EXPERIMENT}'"
    )
    sweep_run_id, trained, ranked = _sweep(console, data)
    report.print_ranking(
        console, ranked, {t.candidate.name: t.candidate for t in trained}, experiment=EXPERIMENT
    )

    best = ranked[0]
    report.print_step(console, f"Registering the best run, {best.name}, as '{MODEL_NAME}'")
    version = _crown(console, best, next(t for t in trained if t.run_id == best.run_id), data)

    card = keel.get_model_card(MODEL_NAME, version)
    console.print()
    report.print_card(
        console, card, title=f"Model card of {MODEL_NAME} version {version} (beginning)"
    )

    runner_up = ranked[1] if len(ranked) > 1 else best
    deployment = _deploy(console, home, data, trained, best, runner_up, version) if deploy else None
    steps = report.next_steps(
        home,
        experiment=EXPERIMENT,
        model_name=MODEL_NAME,
        version=version,
        compare=[best.run_id, runner_up.run_id],
        deployment=None if deployment is None else deployment.name,
    )
    report.print_next_steps(console, home, steps, fresh=fresh)

    elapsed = time.perf_counter() - started
    console.print()
    ending = "" if deployment is None else f" The canary ended {deployment.outcome}."
    console.print(
        f"[bold green]Done[/] in {elapsed:.1f} s. The {ALIAS} is {best.name}, version "
        f"{version} (roc_auc {best.metrics['roc_auc']:.4f}).{ending}",
        highlight=False,
    )
    return DemoResult(
        home=home,
        tracking_uri=tracking_uri,
        experiment=EXPERIMENT,
        sweep_run_id=sweep_run_id,
        run_ids=tuple(t.run_id for t in trained),
        best_run_id=best.run_id,
        best_run_name=best.name,
        model_name=MODEL_NAME,
        version=version,
        alias=ALIAS,
        champion_metrics=dict(best.metrics),
        elapsed_seconds=elapsed,
        deployment=deployment,
    )


def _deploy(
    console: Console,
    home: Path,
    data: DemoData,
    trained: list[_Trained],
    best: Run,
    runner_up: Run,
    version: int,
) -> DeploymentOutcome:
    """Deploy the champion and canary the runner-up (``keel.demo.deployment``)."""
    from keel.demo.deployment import DEPLOYMENT, ENVIRONMENT, Served, run_deployment

    report.print_step(console, f"Deploying the {ALIAS} as '{DEPLOYMENT}' ({ENVIRONMENT})")
    models = {t.run_id: t.model for t in trained}
    return run_deployment(
        console,
        home=home,
        data=data,
        champion=Served(MODEL_NAME, version, best.name, models[best.run_id]),
        challenger_run_id=runner_up.run_id,
        challenger_name=runner_up.name,
        challenger_model=models[runner_up.run_id],
    )


def _sweep(console: Console, data: DemoData) -> tuple[str, list[_Trained], list[Run]]:
    """Train the candidates as nested runs of one 'sweep' run; return them, ranked too.

    The ranking is a search restricted to this sweep's children, so earlier demos in the
    same home do not compete.
    """
    with keel.start_run(
        experiment=EXPERIMENT, run_name="sweep", tags={"demo": DEMO_TAG, "role": "sweep"}
    ) as sweep:
        console.print(
            f"  nested in the parent run 'sweep' ({sweep.run_id})", markup=False, highlight=False
        )
        sweep.log_params(
            {
                "dataset": DATASET,
                "validation_fraction": VALIDATION_FRACTION,
                "random_state": RANDOM_STATE,
                "candidates": len(CANDIDATES),
                "ranking": ", ".join(RANKING),
            }
        )
        _log_datasets(sweep, data)
        trained = _train_all(console, data)
        ranked = list(
            keel.search_runs(
                experiment=EXPERIMENT,
                filter=f"attributes.parent_run_id = '{sweep.run_id}'",
                order_by=list(RANKING),
                max_results=len(CANDIDATES),
            )
        )
        best = ranked[0]
        sweep.log_metrics({f"best_{k}": v for k, v in best.metrics.items() if k != "val_log_loss"})
        sweep.set_tags({"best_run_id": best.run_id, "best_run_name": best.name})
    return sweep.run_id, trained, ranked


def _crown(console: Console, best: Run, trained: _Trained, data: DemoData) -> int:
    """Register ``best``, give it the champion alias, and prove the alias loads it.

    Returns the new version number. The proof loads ``models:/…@champion`` as a service
    would (digests verified) and compares its predictions with the in-process model's.
    """
    import numpy as np

    version = keel.register_model(
        f"runs:/{best.run_id}/model",
        MODEL_NAME,
        description=f"Best of {len(CANDIDATES)} candidates by validation ROC AUC ({best.name}).",
        tags={"demo": DEMO_TAG},
    )
    keel.set_model_card(MODEL_NAME, version.version, intended_use=INTENDED_USE)
    change = keel.set_alias(MODEL_NAME, ALIAS, version.version)
    was = change.previous_version
    moved = f" (was version {was})" if was not in (None, version.version) else ""
    _facts(
        console,
        ("registered", f"{version.uri}  from run {best.name}"),
        ("alias", f"{ALIAS} → version {version.version}{moved}"),
    )

    uri = f"models:/{MODEL_NAME}@{ALIAS}"
    rows = data.X_val.head(5)
    served = np.asarray(keel.load_model(uri).predict(rows))
    original = np.asarray(trained.model.predict(rows))
    if not np.array_equal(served, original):
        raise IntegrityError(
            f"{uri} predicts {served.tolist()} on 5 validation rows, but the trained model "
            f"predicts {original.tolist()}"
        )
    _facts(
        console,
        ("loaded", f"{uri}, digests verified"),
        ("predicts", "what the trained model predicts, on 5 validation rows:"),
        ("", ", ".join(data.class_names[int(i)] for i in served)),
    )
    return version.version


def _facts(console: Console, *facts: tuple[str, str]) -> None:
    """Print ``label  value`` lines, labels aligned."""
    for label, value in facts:
        console.print(f"  {label:<11}{value}", markup=False, highlight=False, soft_wrap=True)


def _log_datasets(run: ActiveRun, data: DemoData) -> None:
    run.log_dataset(data.X_train, name=TRAIN_DATASET, context="training", source=DATASET)
    run.log_dataset(data.X_val, name=VALIDATION_DATASET, context="validation", source=DATASET)


def _train_all(console: Console, data: DemoData) -> list[_Trained]:
    """Train every candidate in a nested run, with a progress bar on terminals."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    trained: list[_Trained] = []
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("training", total=len(CANDIDATES))
        for index, candidate in enumerate(CANDIDATES, start=1):
            progress.update(task, description=f"training {candidate.name}")
            began = time.perf_counter()
            result = _train_one(candidate, data)
            trained.append(result)
            report.print_candidate_done(
                progress.console,
                index,
                len(CANDIDATES),
                candidate.name,
                result.metrics,
                time.perf_counter() - began,
            )
            progress.advance(task)
    return trained


def _train_one(candidate: Candidate, data: DemoData) -> _Trained:
    """Fit one candidate in its own nested run and log everything about it."""
    from keel.demo.candidates import evaluate, loss_curve

    with keel.start_run(
        experiment=EXPERIMENT,
        run_name=candidate.name,
        nested=True,
        tags={"family": candidate.family, "role": "candidate", "demo": DEMO_TAG},
    ) as run:
        # Keel refuses None as a param value (it would hide a missing one): say it in words.
        run.log_params({k: "None" if v is None else v for k, v in candidate.params.items()})
        _log_datasets(run, data)
        model = candidate.build().fit(data.X_train, data.y_train)
        # A curve per ensemble member (boosting stage, number of trees) for the charts.
        for step, loss in loss_curve(model, data.X_val, data.y_val):
            run.log_metric("val_log_loss", loss, step=step)
        evaluation = evaluate(model, data.X_val, data.y_val)
        run.log_metrics(evaluation.metrics)
        run.log_text(evaluation.confusion_json(data.class_names), "confusion_matrix.json")
        run.log_model(model, "model", input_example=data.X_val.head(5))
    return _Trained(candidate, run.run_id, model, evaluation.metrics)
