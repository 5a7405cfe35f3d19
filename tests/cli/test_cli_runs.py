"""``keel experiments list`` and ``keel runs list | show | compare | gc`` on logged runs."""

from __future__ import annotations

import time

from cli_support import Cli, Logged, one_error_line

RUN_KEYS = {
    "run_id", "experiment_id", "name", "status", "start_time", "end_time", "user", "source",
    "git_commit", "git_dirty", "parent_run_id", "lifecycle_stage", "heartbeat_at", "params",
    "metrics", "tags",
}  # fmt: skip


def test_experiments_list(cli: Cli, logged: Logged) -> None:
    table = cli("experiments", "list")
    assert table.exit_code == 0
    assert "churn" in table.stdout

    document = cli.json("experiments", "list")
    (experiment,) = document["experiments"]
    assert experiment["name"] == "churn"
    assert set(experiment) >= {"experiment_id", "name", "lifecycle_stage", "created_at", "tags"}


def test_runs_list_shows_a_table_with_key_metrics_and_params(cli: Cli, logged: Logged) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for run_id in (logged.small_c, logged.large_c, logged.diverged):
        assert run_id[:8] in out
    header = "\n".join(out.splitlines()[:3])  # two-line headers: "metrics." over the key
    for key in ("metrics.", "accuracy", "log_loss", "params.", "solver"):
        assert key in header
    assert "finished" in out
    assert "0.93" in out
    assert "0.31" in out


def test_non_finite_metrics_are_shown_faithfully(cli: Cli, logged: Logged) -> None:
    row = next(
        line for line in cli("runs", "list").stdout.splitlines() if logged.diverged[:8] in line
    )
    cells = [c.strip() for c in row.split("│")]
    assert {"nan", "inf", "-inf"} <= set(cells)

    (run,) = [r for r in cli.json("runs", "list")["runs"] if r["run_id"] == logged.diverged]
    assert run["metrics"] == {"accuracy": "NaN", "log_loss": "Infinity", "margin": "-Infinity"}


def test_runs_list_json_is_stable(cli: Cli, logged: Logged) -> None:
    document = cli.json("runs", "list", "--experiment", "churn")
    assert set(document) == {"runs", "next_page_token"}
    assert document["next_page_token"] is None
    assert len(document["runs"]) == 3
    for run in document["runs"]:
        assert set(run) == RUN_KEYS
        assert len(run["run_id"]) == 32


def test_runs_list_filters_orders_and_pages(cli: Cli, logged: Logged) -> None:
    best = cli.json(
        "runs", "list", "--filter", "metrics.accuracy > 0.5", "--order-by", "metrics.accuracy desc"
    )
    assert [r["run_id"] for r in best["runs"]] == [logged.large_c, logged.small_c]

    first = cli("runs", "list", "-o", "metrics.log_loss", "-n", "1")
    assert first.exit_code == 0
    assert "--page-token" in first.stdout
    page = cli.json("runs", "list", "-o", "metrics.log_loss", "-n", "1")
    assert [r["run_id"] for r in page["runs"]] == [logged.large_c]
    rest = cli.json(
        "runs", "list", "-o", "metrics.log_loss", "-n", "5", "--page-token", page["next_page_token"]
    )
    assert [r["run_id"] for r in rest["runs"]] == [logged.small_c, logged.diverged]


def test_runs_list_with_no_match_and_an_unknown_experiment(cli: Cli, logged: Logged) -> None:
    assert "no runs match" in cli("runs", "list", "-f", "params.C = 'nope'").stdout
    result = cli("runs", "list", "--experiment", "nope")
    assert result.exit_code == 2
    assert one_error_line(result) == "error: no experiment named 'nope'"


def test_runs_show(cli: Cli, logged: Logged) -> None:
    result = cli("runs", "show", logged.large_c)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        logged.large_c, "logreg-C10.0", "churn", "finished", "accuracy", "0.93", "lbfgs",
        "train-features", "training", "model/",
    ):  # fmt: skip
        assert expected in out


def test_runs_show_json_and_a_short_id(cli: Cli, logged: Logged) -> None:
    document = cli.json("runs", "show", logged.small_c[:8])
    assert set(document) == {"run", "inputs", "artifacts"}
    assert document["run"]["run_id"] == logged.small_c
    assert document["run"]["params"] == {"C": "0.1", "solver": "lbfgs"}
    assert document["run"]["metrics"] == {"accuracy": 0.81, "log_loss": 0.52}
    (dataset,) = document["inputs"]
    assert (dataset["name"], dataset["context"]) == ("train-features", "training")
    paths = {a["path"] for a in document["artifacts"]}
    assert paths
    assert all(p.startswith("model/") for p in paths)
    assert all(set(a) == {"path", "digest", "size"} for a in document["artifacts"])


def test_an_unknown_short_id_is_bad_input(cli: Cli, logged: Logged) -> None:
    result = cli("runs", "show", "ffffffff")
    assert result.exit_code == 2
    assert one_error_line(result) == "error: no run whose id starts with 'ffffffff'"


def test_runs_compare_marks_differences_and_the_best_values(cli: Cli, logged: Logged) -> None:
    ids = (logged.small_c, logged.large_c, logged.diverged)
    result = cli("runs", "compare", *ids)
    assert result.exit_code == 0, result.output
    accuracy = next(line for line in result.stdout.splitlines() if "accuracy" in line)
    assert "0.93 ★" in accuracy
    assert "nan" in accuracy
    loss = next(line for line in result.stdout.splitlines() if "log_loss" in line)
    assert "0.31 ★" in loss  # lower is better for a loss
    assert "inf" in loss

    document = cli.json("runs", "compare", *ids)
    assert set(document) == {"runs", "params", "metrics"}
    assert [r["run_id"] for r in document["runs"]] == list(ids)
    params = {row["key"]: row for row in document["params"]}
    assert params["C"]["differs"] is True
    assert params["C"]["values"] == ["0.1", "10.0", "1000000000.0"]
    metrics = {row["key"]: row for row in document["metrics"]}
    assert metrics["accuracy"] == {
        "key": "accuracy",
        "values": [0.81, 0.93, "NaN"],
        "differs": True,
        "goal": "max",
        "best": [logged.large_c],
    }
    assert metrics["log_loss"]["goal"] == "min"
    assert metrics["log_loss"]["best"] == [logged.large_c]
    assert metrics["margin"]["values"] == [None, None, "-Infinity"]
    assert metrics["margin"]["best"] == []


def test_runs_gc_fails_runs_whose_writer_died(cli: Cli, logged: Logged) -> None:
    from keel.stores import current_stores

    experiment = current_stores().tracking.get_experiment_by_name("churn")
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    crashed = current_stores().tracking.create_run(
        experiment.experiment_id, name="crashed", user="ci", start_time=an_hour_ago,
        writer="a-process-that-died",
    )  # fmt: skip
    assert cli.json("runs", "gc") == {"failed_runs": [crashed.run_id]}
    shown = cli.json("runs", "show", crashed.run_id)["run"]
    assert shown["status"] == "failed"
    assert shown["tags"]["keel.failure"] == "heartbeat timed out"
    assert cli("runs", "gc").stdout.strip() == "no stale runs"


def test_runs_gc_rejects_a_negative_timeout(cli: Cli) -> None:
    result = cli("runs", "gc", "--timeout", "-1")
    assert result.exit_code == 2
    assert "timeout" in one_error_line(result)
