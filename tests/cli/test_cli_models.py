"""``keel models list | show | versions | alias | card`` on registered scikit-learn models."""

from __future__ import annotations

import pytest
from cli_support import Cli, Logged, one_error_line

VERSION_KEYS = {
    "name", "version", "source", "run_id", "artifact_digest", "flavor", "signature",
    "input_example", "description", "metrics", "status", "created_at", "updated_at",
    "created_by", "aliases", "tags",
}  # fmt: skip


def test_models_list(cli: Cli, logged: Logged) -> None:
    cli("models", "alias", "m", "champion", "1")
    table = cli("models", "list").stdout
    assert "m" in table
    assert "champion→1" in table

    (model,) = cli.json("models", "list")["models"]
    assert model["name"] == "m"
    assert model["latest_version"] == 2
    assert model["aliases"] == {"champion": 1}


def test_models_show(cli: Cli, logged: Logged) -> None:
    cli("models", "alias", "m", "champion", "2")
    result = cli("models", "show", "m")
    assert result.exit_code == 0, result.output
    assert "champion→2" in result.stdout
    assert "sklearn" in result.stdout
    assert logged.large_c[:8] in result.stdout

    document = cli.json("models", "show", "m")
    assert set(document) == {"model", "latest_versions"}
    assert document["model"]["aliases"] == {"champion": 2}
    assert [v["version"] for v in document["latest_versions"]] == [2, 1]
    assert document["latest_versions"][0]["aliases"] == ["champion"]


def test_models_versions(cli: Cli, logged: Logged) -> None:
    table = cli("models", "versions", "m").stdout
    assert "accuracy=0.93" in table
    assert "accuracy=0.81" in table

    versions = cli.json("models", "versions", "m")["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert all(set(v) == VERSION_KEYS for v in versions)
    assert versions[1]["run_id"] == logged.small_c
    assert versions[1]["flavor"] == "sklearn"


def test_alias_set_move_history_and_delete(cli: Cli, logged: Logged) -> None:
    assert cli("models", "alias", "m", "champion", "1").stdout.strip() == "champion: — → 1"
    assert cli("models", "alias", "m", "champion", "2").stdout.strip() == "champion: 1 → 2"
    moved = cli.json("models", "alias", "m", "challenger", "1")
    assert (moved["alias"], moved["version"], moved["previous_version"]) == ("challenger", 1, None)

    history = cli.json("models", "alias", "m", "--history")["history"]
    assert [(h["alias"], h["previous_version"], h["version"]) for h in history] == [
        ("champion", None, 1),
        ("champion", 1, 2),
        ("challenger", None, 1),
    ]
    only = cli.json("models", "alias", "m", "champion", "--history")["history"]
    assert len(only) == 2
    assert "champion: 1 → 2" in cli("models", "alias", "m", "--history").stdout

    deleted = cli("models", "alias", "m", "champion", "--delete")
    assert deleted.stdout.strip() == "champion: 2 → (removed)"
    assert cli.json("models", "show", "m")["model"]["aliases"] == {"challenger": 1}


def test_model_card_prints_markdown_and_records_intended_use(cli: Cli, logged: Logged) -> None:
    result = cli("models", "card", "m", "1")
    assert result.exit_code == 0, result.output
    assert "m — version 1" in result.stdout
    assert "#" not in result.stdout.splitlines()[0]  # rendered, not raw markdown

    card = cli.json("models", "card", "m", "1")["card"]
    assert card.startswith("# m — version 1")

    written = cli(
        "models", "card", "m", "1", "--intended-use", "Rank churn risk for retention offers."
    )
    assert written.exit_code == 0, written.output
    assert "Rank churn risk for retention offers." in written.stdout
    stored = cli.json("models", "card", "m", "1")
    assert stored["name"] == "m"
    assert stored["version"] == 1
    assert "Rank churn risk for retention offers." in stored["card"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["models", "show", "nope"], "no registered model named 'nope'"),
        (["models", "versions", "nope"], "no registered model named 'nope'"),
        (["models", "alias", "m", "champion", "7"], "model 'm' has no version 7"),
        (["models", "alias", "m", "champion", "two"], "version must be a positive integer"),
        (["models", "alias", "m", "ghost", "--delete"], "model 'm' has no alias 'ghost'"),
        (["models", "alias", "m", "9lives", "1"], "alias '9lives' must start with a letter"),
        (["models", "alias", "m", "latest", "1"], "'latest' is reserved"),
        (["models", "alias", "m", "champion"], "give the VERSION"),
        (["models", "alias", "nope", "--history"], "no registered model named 'nope'"),
        (["models", "card", "m", "3"], "model 'm' has no version 3"),
    ],
)
def test_bad_model_input_exits_2(
    cli: Cli, logged: Logged, command: list[str], message: str
) -> None:
    result = cli(*command)
    assert result.exit_code == 2
    assert message in one_error_line(result)


def test_empty_registry(cli: Cli) -> None:
    assert "no registered models yet" in cli("models", "list").stdout
    assert cli.json("models", "list") == {"models": []}
