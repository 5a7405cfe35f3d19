"""CLI tables in an 80-column terminal: every header, id, status and number shown in full.

Rich alone squeezes every column evenly when a table is too wide, cutting ids and numbers
to "…"; keel.cli._table lets only text (and a timestamp, at its space) give way, then drops
the borders, then prints records, so no value is lost at any width.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from cli_support import Cli, Logged
from rich.console import Console
from rich.text import Text

import keel
from keel.cli._table import Table
from keel.errors import InvalidInput

NARROW = {"COLUMNS": "80"}
HEX_ID = "0123456789abcdef0123456789abcdef"


def _render(table: Table, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False).print(table)
    return out.getvalue()


def _assert_in_full(output: str, values: Iterable[str], unwrapped: str | None = None) -> None:
    """Check each value is shown whole and no line is wider than 80 (but the line starting
    with ``unwrapped``, printed unwrapped on purpose so it can be copied whole)."""
    for value in values:
        assert value in output, f"{value!r} is not shown in full:\n{output}"
    for line in output.splitlines():
        if unwrapped is None or not line.startswith(unwrapped):
            assert len(line) <= 80, f"a line is wider than the terminal: {line!r}"


def _table(kinds: tuple[str, ...], row: tuple[str, ...], headers: tuple[str, ...]) -> Table:
    table = Table()
    for header, kind in zip(headers, kinds, strict=True):
        table.add_column(header, kind=kind)
    table.add_row(*row)
    return table


def test_text_gives_way_and_ids_statuses_numbers_stay_whole() -> None:
    words = "a long free-text description that can wrap over several lines " * 3
    table = _table(
        ("id", "status", "number", "text"),
        (HEX_ID, "finished", "0.987654", words),
        ("id", "status", "value", "description"),
    )
    out = _render(table, 80)
    _assert_in_full(out, [HEX_ID, "finished", "0.987654", "description"])
    assert "┃" in out  # it fits with its borders: the usual look
    assert "…" not in out
    assert "several" in out
    assert out.count("\n") > 4


def test_a_plain_rich_table_would_have_cut_the_id() -> None:
    # The failure this module exists for, so that the test above cannot pass vacuously.
    from rich.table import Table as RichTable

    table = RichTable()
    for header in ("id", "status", "value", "created", "description"):
        table.add_column(header)
    table.add_row(HEX_ID, "finished", "0.987654", "2026-12-01 21:30:03", "x " * 60)
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(table)
    assert HEX_ID not in out.getvalue()


def test_a_timestamp_breaks_at_its_space_before_the_borders_go() -> None:
    table = _table(
        ("id", "id", "time"),
        (HEX_ID, "breast-cancer-classifier", "2026-12-01 21:30:03"),
        ("run", "model", "created"),
    )
    out = _render(table, 80)
    _assert_in_full(out, [HEX_ID, "breast-cancer-classifier", "2026-12-01", "21:30:03"])
    assert "2026-12-01 21:30:03" not in out
    assert "┃" in out


def test_too_wide_for_borders_the_table_goes_compact() -> None:
    table = _table(
        ("id", "id", "status", "time", "text"),
        (HEX_ID, "breast-cancer-prod", "serving", "2026-12-01 21:30:03", "note"),
        ("id", "deployment", "status", "updated", "note"),
    )
    out = _render(table, 80)
    _assert_in_full(out, [HEX_ID, "breast-cancer-prod", "serving", "deployment", "note"])
    assert "┃" not in out
    assert "│" not in out
    assert "─" in out  # the rule under the header


def test_too_wide_even_compact_the_rows_are_records() -> None:
    table = _table(
        ("id", "id", "id", "status", "number"),
        (HEX_ID, HEX_ID[::-1], "breast-cancer-classifier/3", "candidate", "1234567"),
        ("alert", "rule", "version", "role", "requests"),
    )
    table.add_row("b" * 32, "c" * 32, "m/1", "stable", "7")
    out = _render(table, 80)
    _assert_in_full(out, [HEX_ID, HEX_ID[::-1], "breast-cancer-classifier/3", "b" * 32, "7"])
    lines = out.splitlines()
    assert lines[0].split() == ["alert", HEX_ID]
    assert [line.split()[0] for line in lines[:5]] == [
        "alert",
        "rule",
        "version",
        "role",
        "requests",
    ]
    assert table.fits(Console(width=200))
    assert not table.fits(Console(width=80))


def test_a_two_line_header_reads_as_one_label_in_a_record() -> None:
    table = Table()
    table.add_column("run", kind="id")
    table.add_column(Text("metrics.\naccuracy"), kind="number")
    table.add_row(HEX_ID, "0.93")
    assert "metrics.accuracy  0.93" in _render(table, 30)


def test_a_column_kind_is_checked() -> None:
    with pytest.raises(InvalidInput, match="kind is one of id, status, number, time, text"):
        Table().add_column("x", kind="wide")


@pytest.fixture
def populated(cli: Cli, logged: Logged) -> Logged:
    """Add what the other table commands list: an alias, a deployment, a rule, a user."""
    from keel.monitoring.alerts import add_alert_rule

    keel.set_alias("m", "champion", 2)
    keel.create_deployment("churn-prod", "models:/m/1", environment="prod")
    add_alert_rule(
        "churn-drift", deployment="churn-prod", metric="drift_share", op=">", threshold=0.3
    )
    assert cli("auth", "user", "add", "alice", "--role", "admin").exit_code == 0
    assert cli("auth", "token", "create", "--user", "alice", "--label", "ci").exit_code == 0
    return logged


def _narrow(cli: Cli, *args: str) -> str:
    result = cli(*args, env=NARROW)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_runs_list_show_and_compare(cli: Cli, populated: Logged) -> None:
    runs = cli.json("runs", "list")["runs"]
    out = _narrow(cli, "runs", "list")
    headers = ["run", "name", "status", "start", "duration", "metrics."]
    _assert_in_full(out, headers + [r["run_id"][:8] for r in runs] + ["finished", "0.93"])
    hidden = [line for line in out.splitlines() if line.startswith("not shown")]
    assert len(hidden) <= 1  # a column that did not fit is named, not silently dropped
    if hidden:
        assert "params." in out

    run = populated.large_c
    shown = _narrow(cli, "runs", "show", run)
    digests = [a["digest"][:12] for a in cli.json("runs", "show", run)["artifacts"]]
    _assert_in_full(shown, [run, "0.93", "0.31", "lbfgs", "path", "size", *digests])

    compared = _narrow(cli, "runs", "compare", populated.small_c, run, populated.diverged)
    short = [r[:8] for r in (populated.small_c, run, populated.diverged)]
    _assert_in_full(compared, [*short, "0.81", "0.93 ★", "nan", "-inf", "accuracy (max)"])


def test_experiments_and_models(cli: Cli, populated: Logged) -> None:
    (experiment,) = cli.json("experiments", "list")["experiments"]
    out = _narrow(cli, "experiments", "list")
    _assert_in_full(out, ["name", "id", "stage", "created", experiment["experiment_id"], "active"])

    out = _narrow(cli, "models", "list")
    _assert_in_full(out, ["name", "latest", "aliases", "updated", "champion→2"])

    versions = cli.json("models", "versions", "m")["versions"]
    for args in (("models", "versions", "m"), ("models", "show", "m")):
        out = _narrow(cli, *args)
        headers = ["version", "aliases", "status", "flavor", "run", "created", "metrics"]
        _assert_in_full(out, headers + [v["run_id"][:8] for v in versions] + ["ready", "sklearn"])

    out = _narrow(cli, "models", "alias", "m", "--history")
    _assert_in_full(out, ["when", "change", "by", "champion: — → 2"])


def test_deployments(cli: Cli, populated: Logged) -> None:
    out = _narrow(cli, "deploy", "list")
    headers = ["name", "env", "rev", "traffic", "status", "updated"]
    _assert_in_full(out, [*headers, "churn-prod", "prod", "serving"])
    out = _narrow(cli, "deploy", "show", "churn-prod")
    _assert_in_full(out, ["version", "weight", "role", "requests", "p99 ms", "m/1", "100%"])
    out = _narrow(cli, "deploy", "history", "churn-prod")
    _assert_in_full(out, ["rev", "at", "actor", "action", "traffic", "reason", "create"])


def test_alert_rules_audit_and_auth(cli: Cli, populated: Logged) -> None:
    out = _narrow(cli, "alerts", "rule", "list")
    headers = ["rule", "deployment", "condition", "for", "severity", "notifiers", "actions"]
    _assert_in_full(out, [*headers, "churn-drift", "churn-prod", "warning"])

    entries = cli.json("audit", "log")["entries"]
    out = _narrow(cli, "audit", "log")
    objects = [e["object_id"] for e in entries]
    _assert_in_full(out, ["seq", "time", "actor", "action", "object", "change", *objects])
    _assert_in_full(out, [str(e["seq"]) for e in entries] + [e["action"] for e in entries])

    out = _narrow(cli, "auth", "user", "list")
    _assert_in_full(out, ["user", "role", "bindings", "created", "alice", "admin"])
    (token,) = cli.json("auth", "token", "list")["tokens"]
    out = _narrow(cli, "auth", "token", "list")
    headers = ["id", "user", "state", "label", "created", "expires"]
    _assert_in_full(out, [*headers, token["token_id"], "alice", "never"])


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list"),
        ("experiments", "list"),
        ("models", "versions", "m"),
        ("deploy", "list"),
        ("alerts", "rule", "list"),
        ("audit", "log"),
        ("auth", "token", "list"),
    ],
)
def test_json_is_the_same_at_any_width(cli: Cli, populated: Logged, args: tuple[str, ...]) -> None:
    narrow = cli(*args, "--json", env=NARROW)
    wide = cli(*args, "--json", env={"COLUMNS": "200"})
    assert narrow.exit_code == wide.exit_code == 0, narrow.output
    assert narrow.stdout == wide.stdout
    json.loads(narrow.stdout)


FLOW = """
import keel.pipelines as kp

@kp.step
def load_the_training_data(rows: int) -> list:
    return list(range(rows))

@kp.step
def summarise(data: list) -> dict:
    return {"n": len(data), "total": sum(data)}

@kp.pipeline
def nightly_training(rows: int = 3):
    summarise(load_the_training_data(rows))
"""


def test_pipelines_schedules_and_triggers(cli: Cli, home: Path) -> None:
    Path("flow.py").write_text(FLOW, encoding="utf-8")
    run = cli.json("pipeline", "run", "flow.py:nightly_training", "--executor", "inline")
    short = run["run_id"][:8]
    out = _narrow(cli, "pipeline", "list")
    _assert_in_full(out, ["pipeline", "runs", "last run", "status", "nightly_training", short])
    out = _narrow(cli, "pipeline", "runs")
    _assert_in_full(out, ["run", "pipeline", "params", "resumes", short, "finished", "rows=3"])
    out = _narrow(cli, "pipeline", "show", short)
    steps = [s["node"] for s in run["steps"]]
    keys = [s["cache_key"][:8] for s in run["steps"]]
    headers = ["step", "after", "attempts", "cache key"]
    _assert_in_full(out, [*headers, *steps, *keys], unwrapped="pipeline nightly_training  run")

    schedule = ("pipeline", "schedule", "every-night", "--cron", "0 3 * * *")
    assert cli(*schedule, "--pipeline", "flow.py:nightly_training").exit_code == 0
    out = _narrow(cli, "pipeline", "schedules")
    _assert_in_full(out, ["schedule", "when", "missed", "next run", "every-night", "latest"])
    trigger = (
        "pipeline",
        "trigger",
        "add",
        "on-new-model",
        "--pipeline",
        "flow.py:nightly_training",
    )
    assert cli(*trigger, "--on", "model_version", "--subject", "m").exit_code == 0
    out = _narrow(cli, "pipeline", "trigger", "list")
    _assert_in_full(out, ["trigger", "subject", "fired", "on-new-model", "model_version"])


def test_hpo_studies_and_trials(cli: Cli, home: Path) -> None:
    import optuna

    from keel.hpo import tune

    def objective(trial: optuna.Trial) -> float:
        return float(trial.suggest_int("depth", 1, 9))

    sampler = optuna.samplers.GridSampler({"depth": [7, 3, 9]})
    tune(objective, n_trials=3, study="tree-depth-search", sampler=sampler)
    detail = cli.json("hpo", "show", "tree-depth-search")
    out = _narrow(cli, "hpo", "studies")
    headers = ["study", "direction", "trials", "complete", "pruned", "failed", "best"]
    _assert_in_full(out, [*headers, "tree-depth-search", "minimize"])
    out = _narrow(cli, "hpo", "show", "tree-depth-search")
    runs = [t["run_id"][:8] for t in detail["trial_list"]]
    best = f"{detail['best_trials'][0]} ★"
    _assert_in_full(out, ["#", "state", "value", "params", "steps", *runs, "COMPLETE", best])


def test_drift_environments_and_rendered_manifests(cli: Cli, populated: Logged, home: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"mean concave points": rng.normal(size=400)})
    current = pd.DataFrame({"mean concave points": rng.normal(2.0, 1.0, size=400)})
    reference.to_parquet("reference.parquet")
    current.to_parquet("current.parquet")
    report = cli.json("monitor", "drift", "reference.parquet", "current.parquet")
    (column,) = report["columns"]
    out = _narrow(cli, "monitor", "drift", "reference.parquet", "current.parquet")
    headers = ["column", "kind", "method", "statistic", "p-value", "threshold", "drift"]
    _assert_in_full(out, [*headers, "mean concave points", f"{column['statistic']:.4g}"])

    from keel.config import reset_settings

    (home / "config.toml").write_text(
        '[environments.production-eu-west]\nalias = "champion"\n\n'
        '[environments.production-eu-west.gates]\nmetrics = ["accuracy >= 0.9"]\n',
        encoding="utf-8",
    )
    reset_settings()
    out = _narrow(cli, "env", "list")
    _assert_in_full(out, ["name", "alias", "gates", "production-eu-west", "champion"])

    out = _narrow(cli, "deploy", "render", "churn-prod", "--out", "manifests")
    _assert_in_full(out, ["object", "version", "role", "weight", "m/1", "stable", "100%"])


def test_alerts_and_their_events(cli: Cli, populated: Logged) -> None:
    from keel.monitoring.alerts.runner import run_pass
    from keel.stores import current_stores

    rule = ("alerts", "rule", "add", "churn-drift-critical", "--deployment", "churn-prod")
    condition = ("--metric", "drift_share", "--op", ">", "--threshold", "0.3")
    assert cli(*rule, *condition, "--severity", "critical", "--notifier", "log").exit_code == 0
    run_pass(current_stores(), figure_source=lambda *_, **__: {"drift_share": 0.875})
    alerts = cli.json("alerts", "list", "--state", "firing")["alerts"]
    assert {a["rule"] for a in alerts} == {"churn-drift", "churn-drift-critical"}
    out = _narrow(cli, "alerts", "list")
    headers = ["id", "rule", "deployment", "state", "value", "severity", "started", "acked by"]
    values = ["churn-drift-critical", "churn-prod", "firing", "0.875", "critical", "warning"]
    _assert_in_full(out, [*headers, *values, *(a["alert_id"] for a in alerts)])
    (alert,) = [a for a in alerts if a["rule"] == "churn-drift-critical"]
    for args in (("alerts", "show", alert["alert_id"]), ("alerts", "events")):
        out = _narrow(cli, *args)
        headers = ["at", "rule", "kind", "value", "detail"]
        _assert_in_full(out, [*headers, "churn-drift-critical", "firing", "notified", "0.875"])


def test_runs_list_as_records_keeps_every_metric_and_param(cli: Cli, populated: Logged) -> None:
    result = cli("runs", "list", env={"COLUMNS": "40"})
    assert result.exit_code == 0, result.output
    for label in ("metrics.accuracy", "metrics.log_loss", "params.C", "params.solver"):
        assert label in result.stdout
    assert "not shown" not in result.stdout
    assert populated.large_c[:8] in result.stdout
