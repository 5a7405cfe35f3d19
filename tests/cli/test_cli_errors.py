"""Errors are one line with exit code 2 for bad input, 1 for a failure; --debug adds a traceback."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from cli_support import Cli, Logged, fresh_process, one_error_line, set_schema_revision

import keel
from keel.store.schema import HEAD_REVISION

UNKNOWN_RUN = "0123456789abcdef0123456789abcdef"


def test_an_unknown_run_is_bad_input(cli: Cli) -> None:
    result = cli("runs", "show", UNKNOWN_RUN)
    assert result.exit_code == 2
    assert one_error_line(result) == f"error: no run with id '{UNKNOWN_RUN}'"


def test_a_malformed_run_id_is_bad_input(cli: Cli) -> None:
    result = cli("runs", "show", "not-an-id")
    assert result.exit_code == 2
    assert "32 lowercase hex" in one_error_line(result)


def test_a_malformed_filter_names_the_position(cli: Cli, logged: Logged) -> None:
    result = cli("runs", "list", "--filter", "metrics.accuracy >> 0.5")
    assert result.exit_code == 2
    assert result.stdout == ""
    first, *caret = result.stderr.splitlines()
    assert first.startswith("error: invalid filter at position ")
    assert caret
    assert caret[-1].strip() == "^"


def test_the_debug_flag_adds_the_traceback(cli: Cli) -> None:
    result = cli("--debug", "runs", "show", UNKNOWN_RUN)
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "keel.errors.NotFound" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: no run with id '{UNKNOWN_RUN}'"

    with_env = cli("runs", "show", UNKNOWN_RUN, env={"KEEL_DEBUG": "1"})
    assert "Traceback" in with_env.stderr


def test_an_unexpected_exception_is_one_line_and_exit_1(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(keel, "list_experiments", broken)
    result = cli("experiments", "list")
    assert result.exit_code == 1
    assert one_error_line(result) == (
        "error: unexpected RuntimeError: disk on fire second line "
        "(run with --debug for the traceback)"
    )
    debug = cli("--debug", "experiments", "list")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr


def test_usage_errors_are_one_line_and_exit_2(cli: Cli) -> None:
    missing = cli("runs", "show")
    assert missing.exit_code == 2
    assert one_error_line(missing) == (
        "error: Missing argument 'run_id'. (see 'keel runs show --help')"
    )
    unknown = cli("runs", "frobnicate")
    assert unknown.exit_code == 2
    assert "No such command 'frobnicate'" in one_error_line(unknown)
    wrong_type = cli("runs", "list", "--max-results", "many")
    assert wrong_type.exit_code == 2
    assert "'--max-results'" in one_error_line(wrong_type)
    assert cli("runs").exit_code == 2  # a group alone shows its help
    result = cli("runs", "compare", UNKNOWN_RUN)
    assert result.exit_code == 2
    assert "at least two" in one_error_line(result)


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "list"],
        ["runs", "show", UNKNOWN_RUN],
        ["runs", "gc"],
        ["experiments", "list"],
        ["models", "list"],
        ["models", "versions", "m"],
    ],
)
def test_an_out_of_date_schema_stops_every_command(
    cli: Cli, home: Path, command: list[str]
) -> None:
    assert cli("runs", "list").exit_code == 0  # creates the database at the current schema
    set_schema_revision(home, "0001")

    result = cli(*command)
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "revision 0001" in line
    assert "Run `keel db upgrade`" in line


def test_info_and_db_status_still_report_an_out_of_date_schema(cli: Cli, home: Path) -> None:
    cli("runs", "list")
    set_schema_revision(home, "0001")

    info = cli.json("info")
    assert info["schema"]["state"] == "out_of_date"
    assert info["schema"]["revision"] == "0001"
    assert "keel db upgrade" in info["schema"]["message"]
    status = cli.json("db", "status")
    assert (status["state"], status["revision"], status["head"]) == (
        "out_of_date",
        "0001",
        HEAD_REVISION,
    )
    doctor = cli("doctor")
    assert doctor.exit_code == 1
    assert "keel db upgrade" in doctor.stdout


def _database_at_revision_0001(home: Path) -> None:
    """Write the database an older Keel (schema revision 0001) would have left behind."""
    from keel.store.database import Database
    from keel.store.migrate import run_alembic_upgrade

    home.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{home / 'keel.db'}")
    try:
        run_alembic_upgrade(db, "0001")
    finally:
        db.dispose()
    fresh_process()


def test_db_upgrade_backs_up_then_upgrades(cli: Cli, home: Path) -> None:
    _database_at_revision_0001(home)
    refused = cli("models", "list")
    assert refused.exit_code == 1
    assert "keel db upgrade" in one_error_line(refused)

    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert f"revision 0001 → {HEAD_REVISION}" in result.stdout
    backups = list(home.glob("keel.db.backup-*"))
    assert len(backups) == 1
    assert str(backups[0]) in result.stdout
    with closing(sqlite3.connect(backups[0])) as backup:
        assert backup.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]

    assert cli("models", "list").exit_code == 0
    assert cli("doctor").exit_code == 0
    again = cli.json("db", "upgrade")
    assert again == {
        "tracking_uri": f"sqlite:///{home / 'keel.db'}",
        "from_revision": HEAD_REVISION,
        "to_revision": HEAD_REVISION,
        "changed": False,
        "backup": None,
    }


def test_a_database_from_a_newer_keel_is_refused_naming_both_versions(cli: Cli, home: Path) -> None:
    cli("runs", "list")
    set_schema_revision(home, "9999")

    for command in (["runs", "list"], ["db", "upgrade"]):
        result = cli(*command)
        assert result.exit_code == 1
        line = one_error_line(result)
        assert "revision 9999" in line
        assert (
            f"this is Keel {keel.__version__}, which knows revisions up to {HEAD_REVISION}" in line
        )
    assert cli.json("info")["schema"]["state"] == "too_new"


def test_an_unreachable_store_is_a_failure_but_info_still_works(
    cli: Cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir(parents=True)
    (home / "keel.db").write_bytes(b"this is not a database" * 100)
    info = cli("info", "--json")
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["schema"]["state"] == "unavailable"
    assert cli("doctor").exit_code == 1
