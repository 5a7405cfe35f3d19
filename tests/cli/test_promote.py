"""``keel promote``, ``keel promote approve | history`` and ``keel env list | show``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Cli, one_error_line
from tests.promotion._setup import CONFIG, Churn, register_churn, write_config

import keel


@pytest.fixture
def churn(home: Path) -> Churn:
    write_config(home)
    found = register_churn(home.parent)
    keel.set_alias("churn", "prod", 1)
    keel.create_deployment("churn-prod", "models:/churn/1", environment="prod")
    return found


def test_promote_refuses_with_a_table_of_reasons_then_promotes_once_approved(
    cli: Cli, churn: Churn
) -> None:
    result = cli("promote", "models:/churn/2", "--to", "prod")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.stdout
    assert "0 of 1 approvals by editor or higher" in result.stdout
    assert "keel promote approve models:/churn/2 --to prod" in result.stdout
    assert "refused models:/churn/2 -> prod: 1 gate(s) failed; nothing changed" in result.stdout
    result = cli("promote", "approve", "models:/churn/2", "--to", "prod", "--comment", "ok")
    assert result.exit_code == 0, result.output
    assert "approved models:/churn/2 for prod" in result.stdout
    dry = cli("promote", "models:/churn/2", "--to", "prod", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run models:/churn/2 -> prod: every gate passed" in dry.stdout
    done = cli.json("promote", "models:/churn/2", "--to", "prod")
    assert done["outcome"] == "promoted"
    assert (done["previous_version"], done["version"]) == (1, 2)
    assert done["rollout"]["status"] == "canary step 1/2"
    assert keel.get_registered_model("churn").aliases["prod"] == 2
    history = cli.json("promote", "history", "--env", "prod")["promotions"]
    assert [p["outcome"] for p in history] == ["promoted", "dry-run", "refused"]
    table = cli("promote", "history")
    assert table.exit_code == 0
    assert "prod: v1 -> v2" in table.stdout
    assert "prod: v1 (kept)" in table.stdout


def test_promote_prints_a_passing_table_and_the_alias_move(cli: Cli, churn: Churn) -> None:
    result = cli("promote", "models:/churn/2", "--to", "staging")
    assert result.exit_code == 0, result.output
    assert "promoted models:/churn/2 -> staging: staging unset -> v2" in result.stdout
    assert "deployment churn-staging create" in result.stdout


def test_the_current_environment_is_the_default_target(cli: Cli, churn: Churn) -> None:
    result = cli("--env", "strict", "promote", "models:/churn/2")
    assert result.exit_code == 1
    assert "accuracy = 0.93 fails accuracy >= 0.999" in result.stdout
    result = cli("promote", "models:/churn/2", env={"KEEL_ENV": "staging"})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "models:/churn/2", "--to", "qa"], "no environment named 'qa'"),
        (["promote", "models:/churn/9", "--to", "prod"], "9"),
        (["promote", "models:/nope/1", "--to", "prod"], "nope"),
        (["promote", "models:/churn/2", "--to", "badexpr"], "accuracy >>= 1"),
        (["promote", "models:/churn/2", "--to", "nofile"], "missing/holdout.csv"),
        (["promote", "models:/churn/2", "--to", "notarget"], "no target column 'churned'"),
        (["promote", "models:/churn/2", "--to", "../../etc"], "environment name"),
        (["promote", "models:/churn/2"], "name the environment"),
        (["--env", "a b", "promote", "models:/churn/2"], "environment name"),
        (["promote", "approve", "models:/churn/7", "--to", "prod"], "7"),
        (["promote", "history", "--limit", "0"], "limit"),
        (["env", "show", "qa"], "no environment named 'qa'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    cli: Cli, churn: Churn, args: list[str], message: str
) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert message in one_error_line(result)


def test_env_list_and_show(cli: Cli, churn: Churn, home: Path) -> None:
    write_config(home, CONFIG.split("[environments.badexpr")[0])  # every one valid
    listed = cli.json("env", "list")
    assert listed["current"] is None
    names = [e["name"] for e in listed["environments"]]
    assert names == sorted(names)
    assert "prod" in names
    table = cli("--env", "prod", "env", "list")
    assert table.exit_code == 0, table.output
    assert "churn" not in table.stdout  # the {model} template is shown as it is
    assert "{model}-prod by canary" in table.stdout
    assert "accuracy >= 0.8; latency_ms < 5" in table.stdout
    shown = cli("env", "show", "prod")
    assert shown.exit_code == 0, shown.output
    assert "champion gate" in shown.stdout
    assert "1 by editor or higher" in shown.stdout
    data = cli.json("env", "show", "prod")
    assert data["gates"]["compare_champion"]["target"] == "label"
    assert data["deployment"] == {
        "name": "{model}-prod",
        "strategy": "canary",
        "steps": [10, 100],
        "interval_s": 5,
    }


def test_env_list_without_environments(cli: Cli, home: Path) -> None:
    result = cli("env", "list")
    assert result.exit_code == 0
    assert "add [environments.prod] to .keel/config.toml" in result.stdout  # not markup
    help_text = cli("env", "--help", env={"COLUMNS": "200"})
    assert "Environments ([environments.<name>] in .keel/config.toml)" in help_text.stdout
    write_config(home, "[environments.prod.gates]\nmetrics = ['accuracy >>= 1']\n")
    result = cli("env", "list")
    assert result.exit_code == 2
    assert "environment 'prod' in config.toml" in one_error_line(result)
