"""``keel init``, ``keel info`` and ``keel doctor``: which home is used, and is it healthy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_support import Cli, database

from keel import __version__
from keel.store.schema import HEAD_REVISION


def test_version_and_help(cli: Cli) -> None:
    assert cli("--version").stdout.strip() == f"keel {__version__}"
    result = cli("--help")
    assert result.exit_code == 0
    for group in ("init", "info", "doctor", "db", "experiments", "runs", "models", "demo"):
        assert group in result.stdout


def test_init_creates_a_project_home_that_subfolders_find(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEEL_HOME")
    project = tmp_path / "project"
    project.mkdir()

    result = cli("init", str(project))
    assert result.exit_code == 0, result.output
    assert (project / ".keel" / "config.toml").is_file()
    assert str(project / ".keel") in result.stdout
    assert "Next steps" in result.stdout

    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    info = cli.json("info")
    assert info["home"] == str(project / ".keel")
    assert "nearest .keel/" in info["home_source"]
    assert cli("runs", "list").exit_code == 0
    assert (project / ".keel" / "keel.db").is_file()  # the store went where init put it


def test_init_twice_is_harmless(cli: Cli, tmp_path: Path) -> None:
    first = cli.json("init", str(tmp_path / "p"))
    again = cli.json("init", str(tmp_path / "p"))
    assert first["created"] is True
    assert again["created"] is False
    assert again["home"] == first["home"]


def test_without_a_project_home_the_user_home_is_the_fallback(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEEL_HOME")
    info = cli.json("info")
    assert info["home"] == str(tmp_path / "user-home" / ".keel")
    assert info["home_source"].startswith("fallback ~/.keel")


def test_info_names_the_home_stores_schema_and_versions(cli: Cli, home: Path) -> None:
    info = cli.json("info")
    assert info["versions"]["keel"] == __version__
    assert info["home"] == str(home)
    assert info["home_source"] == "KEEL_HOME environment variable"
    assert info["tracking_uri"] == f"sqlite:///{home / 'keel.db'}"
    assert info["artifact_uri"] == str(home / "artifacts")
    assert info["config_file_exists"] is False
    assert info["schema"]["state"] == "not_created"
    assert not (home / "keel.db").exists()  # looking does not create anything

    cli("runs", "list")
    assert cli.json("info")["schema"] | {"message": ""} == {
        "state": "current",
        "revision": HEAD_REVISION,
        "head": HEAD_REVISION,
        "written_by": __version__,
        "message": "",
    }
    table = cli("info").stdout
    assert str(home) in table
    assert "current" in table


def test_info_masks_the_database_password(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_TRACKING_URI", "postgresql+psycopg://keel:s3cret@127.0.0.1:1/keel")
    result = cli("info", "--json")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.stdout
    assert "keel:***@127.0.0.1" in result.stdout


def test_doctor_is_green_on_a_fresh_home(cli: Cli) -> None:
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("✓") == 4
    assert "✗" not in result.stdout
    report = cli.json("doctor")
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == [
        "metadata store reachable",
        "schema current",
        "tables and indexes present",
        "artifact store writable and readable",
    ]


def test_doctor_is_red_when_an_index_is_missing(cli: Cli, home: Path) -> None:
    cli("runs", "list")  # creates the database
    conn = database(home)
    conn.execute("DROP INDEX ix_runs_status_heartbeat_at")
    conn.close()

    result = cli("doctor")
    assert result.exit_code == 1
    assert "✗" in result.stdout
    assert "index ix_runs_status_heartbeat_at" in result.stdout
    assert result.stderr.strip() == "error: 1 of 4 checks failed"

    report = cli("doctor", "--json")
    assert report.exit_code == 1
    failed = [c for c in json.loads(report.stdout)["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["tables and indexes present"]


def test_demo_runs_the_lifecycle_demo_in_the_given_home(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.demo

    calls: list[Path | None] = []
    monkeypatch.setattr(keel.demo, "run_demo", calls.append)
    assert cli("demo", "--home", str(tmp_path / "demo")).exit_code == 0
    assert cli("demo").exit_code == 0
    assert calls == [tmp_path / "demo", None]


def test_db_status_in_words(cli: Cli, home: Path) -> None:
    cli("runs", "list")
    out = cli("db", "status").stdout
    assert f"metadata store: sqlite:///{home / 'keel.db'}" in out
    assert f"schema: current (revision {HEAD_REVISION}, this Keel: {HEAD_REVISION})" in out
