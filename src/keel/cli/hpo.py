"""``keel hpo studies | show``: hyperparameter-search studies and their trials.

``show`` lists why each failed trial failed under its table (the objective's error, or
"the objective returned inf, not a finite number"), as ``fail_reason`` with ``--json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import JsonOption, Table, number, out_console, plain, short_id, timestamp

if TYPE_CHECKING:
    import optuna

__all__ = ["app"]

app = typer.Typer(help="Hyperparameter search: studies and their trials.", no_args_is_help=True)

_STATE_STYLES = {"COMPLETE": "green", "PRUNED": "magenta", "FAIL": "bold red", "RUNNING": "cyan"}


def _ms(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _trial(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "number": t.number,
        "state": t.state.name,
        "values": t.values,
        "params": t.params,
        "intermediate_steps": len(t.intermediate_values),
        "started_at": _ms(t.datetime_start),
        "completed_at": _ms(t.datetime_complete),
        "run_id": t.user_attrs.get("keel.run_id"),
        "fail_reason": _fail_reason(t),
    }


def _fail_reason(t: optuna.trial.FrozenTrial) -> str | None:
    from optuna.trial import TrialState

    from keel.hpo.trials import FAIL_REASON

    if t.state is not TrialState.FAIL:
        return None
    # A trial Optuna ran itself (study.optimize) keeps no reason: its log had it.
    reason = t.user_attrs.get(FAIL_REASON)
    return str(reason) if reason else "no reason recorded (not run by keel.hpo.tune)"


def _best(study: optuna.Study) -> list[int]:
    from keel.hpo.search import best_trial

    if len(study.directions) > 1:
        return sorted(t.number for t in study.best_trials)
    best = best_trial(study)
    return [] if best is None else [best.number]


def _summary(study: optuna.Study) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    best = _best(study)
    by_number = {t.number: t for t in trials}
    states: dict[str, int] = {}
    for t in trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return {
        "name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "trials": len(trials),
        "states": states,
        "best_trials": best,
        "best_values": by_number[best[0]].values if best else None,
        "best_params": by_number[best[0]].params if best else None,
    }


@app.command("studies")
def studies(as_json: JsonOption = False) -> None:
    """List studies with their trial counts and best values, by name."""
    from keel.hpo.journal import list_studies, load_study

    rows = []
    for info in list_studies():
        rows.append({**_summary(load_study(info.name)), **info.to_dict()})
    if as_json:
        from keel.cli._output import print_json

        print_json({"studies": rows})
        return
    console = out_console()
    if not rows:
        console.print("no studies yet; start one with keel.hpo.tune(objective, n_trials=...)")
        return
    table = Table()
    table.add_column("study", kind="id", style="bold")
    table.add_column("direction", kind="status")
    for column in ("trials", "complete", "pruned", "failed", "best"):
        table.add_column(column, kind="number")
    table.add_column("updated", kind="time")
    for r in rows:
        best = r["best_values"]
        table.add_row(
            plain(r["name"]), ", ".join(r["directions"]), str(r["trials"]),
            str(r["states"].get("COMPLETE", 0)), str(r["states"].get("PRUNED", 0)),
            str(r["states"].get("FAIL", 0)),
            "—" if not best else ", ".join(number(v) for v in best), timestamp(r["updated_at"]),
        )  # fmt: skip
    console.print(table)


@app.command("show")
def show(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=100_000, help="Show the last N trials.")
    ] = 100,
    as_json: JsonOption = False,
) -> None:
    """Show a study: its trials (number, state, value, params) and its best trial."""
    from keel.hpo.journal import load_study

    opt = load_study(study)
    summary = _summary(opt)
    trials = [_trial(t) for t in opt.get_trials(deepcopy=False)][-limit:]
    if as_json:
        from keel.cli._output import print_json

        print_json({**summary, "trial_list": trials})
        return
    console = out_console()
    best = set(summary["best_trials"])
    table = Table(title=f"study {study} ({', '.join(summary['directions'])})")
    for column, kind in (
        ("#", "number"), ("state", "status"), ("value", "number"), ("params", "text"),
        ("steps", "number"), ("run", "id"),
    ):  # fmt: skip
        table.add_column(column, kind=kind)
    for t in trials:
        value = "—" if t["values"] is None else ", ".join(number(v) for v in t["values"])
        params = ", ".join(f"{k}={number(v)}" for k, v in t["params"].items())
        mark = " ★" if t["number"] in best else ""
        table.add_row(
            f"{t['number']}{mark}",
            plain(t["state"], _STATE_STYLES.get(t["state"], "")),
            value,
            plain(params),
            str(t["intermediate_steps"]),
            short_id(t["run_id"]),
        )
    console.print(table)
    for t in trials:
        if t["fail_reason"] is not None:
            console.print(plain(f"trial {t['number']} failed: {t['fail_reason']}"))
    if summary["best_params"] is None:
        console.print("no trial has completed yet")
        return
    values = ", ".join(number(v) for v in summary["best_values"])
    params = ", ".join(f"{k}={number(v)}" for k, v in summary["best_params"].items())
    console.print(f"best: trial {summary['best_trials'][0]}  value {values}  params {params}")
