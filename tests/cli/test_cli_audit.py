"""``keel audit log | verify``: the table, filters, JSON, and tampering caught with exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Cli, database, one_error_line

import keel
from keel.governance import acting_as


@pytest.fixture
def changes(home: Path) -> str:
    """Make a few audited changes; return the run's id."""
    with acting_as("alice"):
        keel.create_experiment("churn")
    with keel.start_run(experiment="churn", run_name="r") as run:
        run.log_params({"C": 0.5})
        run.set_tags({"stage": "dev"})
    return run.run_id


def test_log_shows_who_changed_what(cli: Cli, changes: str) -> None:
    result = cli("audit", "log")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in ("experiment.create", "run.create", "run.params", "run.tags", "run.end"):
        assert expected in out
    assert "alice" in out
    assert changes in out
    assert "C=0.5" in out


def test_log_filters_and_prints_json(cli: Cli, changes: str) -> None:
    entries = cli.json("audit", "log", "--object", changes)["entries"]
    assert [e["action"] for e in entries] == ["run.create", "run.params", "run.tags", "run.end"]
    assert entries[1]["change"] == {"C": "0.5"}
    assert [e["seq"] for e in cli.json("audit", "log", "--limit", "2")["entries"]] == [4, 5]
    assert [e["actor"] for e in cli.json("audit", "log", "--action", "experiment")["entries"]] == [
        "alice"
    ]
    assert len(cli.json("audit", "log", "--since", "1h")["entries"]) == 5
    result = cli("audit", "log", "--action", "model.create")
    assert result.exit_code == 0
    assert "no audit entries match" in result.stdout


def test_a_bad_since_is_one_error_line_and_exit_2(cli: Cli, changes: str) -> None:
    result = cli("audit", "log", "--since", "last tuesday")
    assert result.exit_code == 2
    assert "not a time" in one_error_line(result)


def test_verify_passes_on_an_untampered_log(cli: Cli, changes: str) -> None:
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert "✓ 5 entries, chain intact" in result.stdout
    assert cli.json("audit", "verify") == {
        "ok": True,
        "checked": 5,
        "head_seq": 5,
        "problems": [],
    }


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1", "edited: entry 1"),
        ("UPDATE audit_log SET change = '{}' WHERE seq = 3", "edited: entry 3"),
        ("DELETE FROM audit_log WHERE seq = 2", "deleted: entry 2 is missing"),
        ("DELETE FROM audit_log WHERE seq = 5", "truncated: entry 5 is missing"),
    ],
)
def test_verify_exits_1_naming_each_tampered_entry(
    cli: Cli, changes: str, home: Path, statement: str, named: str
) -> None:
    conn = database(home)
    try:
        conn.execute(statement)
    finally:
        conn.close()
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert named in result.stdout
    document = cli("audit", "verify", "--json")
    assert document.exit_code == 1
    assert '"ok": false' in document.stdout
