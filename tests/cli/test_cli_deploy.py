"""``keel deploy …``: the deployments CLI on the local database and through a live server."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Cli, Logged, one_error_line


def test_create_list_show_and_history(cli: Cli, logged: Logged) -> None:
    result = cli("deploy", "create", "churn-prod", "models:/m/1", "--env", "prod")
    assert result.exit_code == 0, result.output
    assert "churn-prod revision 1: m/1 100% (stable) — serving" in result.stdout
    listed = cli("deploy", "list").stdout
    assert "churn-prod" in listed
    assert "prod" in listed
    (dep,) = cli.json("deploy", "list", "--env", "prod")["deployments"]
    assert dep["plan"]["backends"] == [
        {"model": "m", "version": 1, "weight": 100.0, "role": "stable"}
    ]
    assert cli.json("deploy", "list", "--env", "qa")["deployments"] == []
    shown = cli("deploy", "show", "churn-prod")
    assert shown.exit_code == 0, shown.output
    assert "m/1" in shown.stdout
    assert "only through a Keel server" in shown.stdout
    assert cli.json("deploy", "show", "churn-prod")["live"] is None
    history = cli("deploy", "history", "churn-prod").stdout
    assert "create" in history
    assert "created in prod serving m/1" in history


def test_canary_rollout_traffic_rollback_and_abort(cli: Cli, logged: Logged) -> None:
    cli("deploy", "create", "churn-prod", "m/1")
    dep = cli.json(
        "deploy", "rollout", "churn-prod", "models:/m/2", "--strategy", "canary",
        "--steps", "10,50,100", "--interval", "30",
    )  # fmt: skip
    assert dep["status"] == "canary step 1/3"
    assert dep["rollout"]["config"]["steps"] == [10, 50, 100]
    assert dep["rollout"]["config"]["interval_s"] == 30
    busy = cli("deploy", "traffic", "churn-prod", "m/1=50", "m/2=50")
    assert busy.exit_code == 1
    assert "abort or promote it" in one_error_line(busy)
    paused = cli.json("deploy", "pause", "churn-prod")
    assert "paused" in paused["rollout"]["summary"]
    again = cli("deploy", "pause", "churn-prod")
    assert again.exit_code == 1
    assert "paused already" in one_error_line(again)
    assert "paused" not in cli.json("deploy", "resume", "churn-prod")["rollout"]["summary"]
    aborted = cli.json("deploy", "abort", "churn-prod")
    assert aborted["rollout"]["status"] == "aborted"
    split = cli.json("deploy", "traffic", "churn-prod", "m/1=70", "models:/m/2=30")
    assert [(b["version"], b["weight"]) for b in split["plan"]["backends"]] == [(1, 70), (2, 30)]
    back = cli("deploy", "rollback", "churn-prod", "--to", "m/2")
    assert back.exit_code == 0, back.output
    assert "m/2 100% (stable)" in back.stdout
    updated = cli.json("deploy", "update", "churn-prod", "m/1", "--strategy", "shadow")
    assert updated["plan"]["shadow"]["version"] == 1
    assert cli.json("deploy", "promote", "churn-prod")["rollout"]["status"] == "promoted"


def test_an_ab_test_from_the_command_line(cli: Cli, logged: Logged) -> None:
    cli("deploy", "create", "churn-prod", "m/1")
    dep = cli.json(
        "deploy", "rollout", "churn-prod", "m/2", "--strategy", "ab", "--weights", "50,50",
        "--sticky-key", "user_id", "--config", '{"min_samples": 2}',
    )  # fmt: skip
    assert dep["plan"]["sticky_key"] == "user_id"
    for variant, value in (("m/1", "0"), ("m/1", "1"), ("m/2", "1"), ("m/2", "1")):
        assert cli("deploy", "outcome", "churn-prod", value, "--variant", variant).exit_code == 0
    assert cli.json("deploy", "outcome", "churn-prod", "1", "--key", "user-9") == {"recorded": 1}
    result = cli.json("deploy", "analysis", "churn-prod")
    assert sum(v["n"] for v in result["variants"]) == 5
    table = cli("deploy", "analysis", "churn-prod").stdout
    assert "two-proportion" not in table  # the table shows figures, the verdict below
    assert result["verdict"] in table


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("deploy", "show", "nope"), 2, "no deployment named 'nope'"),
        (("deploy", "create", "bad name", "m/1"), 2, "deployment name"),
        (("deploy", "create", "x", "models:/m/9"), 2, "names no registered model version"),
        (("deploy", "create", "x", "runs:/" + "a" * 32 + "/model"), 2, "registered versions only"),
        (("deploy", "rollout", "d", "m/2", "--strategy", "yolo"), 2, "unknown strategy"),
        (("deploy", "rollout", "d", "m/2", "--strategy", "canary", "--steps", "5,x"), 2, "--steps"),
        (("deploy", "rollout", "d", "m/2", "--config", "{nope"), 2, "--config is not JSON"),
        (("deploy", "rollout", "d", "m/2", "--config", "[1]"), 2, "JSON object"),
        (("deploy", "rollout", "d", "m/2", "--config", "{" * 200_000), 2, "at most"),
        (("deploy", "traffic", "d", "m/1"), 2, "VERSION=PERCENT"),
        (("deploy", "traffic", "d", "m/1=abc"), 2, "VERSION=PERCENT"),
        (("deploy", "traffic", "d", "m/1=60", "m/2=60"), 2, "sum to 120"),
        (("deploy", "rollback", "d"), 1, "no previous version"),
        (("deploy", "abort", "d"), 1, "no rollout running"),
        (("deploy", "promote", "d"), 1, "no rollout running"),
        (("deploy", "outcome", "d", "1", "--variant", "m/1"), 1, "no A/B test running"),
        (("deploy", "analysis", "d"), 1, "no A/B test"),
        (("deploy", "history", "d", "--limit", "0"), 2, "limit"),
    ],
)
def test_bad_input_is_one_line_and_the_right_exit_code(
    cli: Cli, logged: Logged, args: tuple[str, ...], code: int, needle: str
) -> None:
    cli("deploy", "create", "d", "m/1")
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert needle in one_error_line(result)


def test_delete(cli: Cli, logged: Logged) -> None:
    cli("deploy", "create", "d", "m/1")
    assert cli("deploy", "delete", "d").stdout.strip() == "deleted deployment d"
    assert cli("deploy", "delete", "d").exit_code == 2


def test_through_a_server_changes_are_served_and_show_has_live_figures(
    cli: Cli, logged: Logged, home: Path
) -> None:
    from tests.live_server import running_server

    with running_server(home) as url:  # the server works on this same home's database
        env = {"KEEL_TRACKING_URI": url}
        created = cli("deploy", "create", "churn-prod", "m/1", "--json", env=env)
        assert created.exit_code == 0, created.output
        switched = cli("deploy", "rollout", "churn-prod", "m/2", "--json", env=env)
        assert switched.exit_code == 0, switched.output
        assert '"status":"serving"' in switched.stdout.replace(" ", "")
        shown = cli("deploy", "show", "churn-prod", env=env)
        assert shown.exit_code == 0, shown.output
        assert "only through a Keel server" not in shown.stdout
        document = cli("deploy", "show", "churn-prod", "--json", env=env)
        import json

        live = json.loads(document.stdout)["live"]
        assert live["serving_revision"] == 3  # create, warm m/2 as standby, switch
        history = cli("deploy", "history", "churn-prod", env=env).stdout
        assert "controller" in history  # the switch was the server's controller's
        reloaded = cli("deploy", "reload", "churn-prod", env=env)
        assert reloaded.exit_code == 0, reloaded.output
        assert reloaded.stdout.strip() == "churn-prod: reloaded m/1, m/2"
        document = cli("deploy", "reload", "churn-prod", "--json", env=env)
        assert json.loads(document.stdout) == {
            "deployment": "churn-prod",
            "reloaded": ["m/1", "m/2"],
        }
        unknown = cli("deploy", "reload", "nope", env=env)
        assert unknown.exit_code == 2
        assert "nope" in one_error_line(unknown)


def test_reload_on_the_local_database_says_it_needs_a_server(cli: Cli, logged: Logged) -> None:
    cli("deploy", "create", "d", "m/1")
    result = cli("deploy", "reload", "d")
    assert result.exit_code == 1, result.output
    assert "needs `keel server`" in one_error_line(result)
