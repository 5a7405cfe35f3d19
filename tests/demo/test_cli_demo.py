"""``keel demo`` through the CLI, in-process: its options and their errors (the whole demo
runs once per session in ``conftest``; ``tests/e2e/test_demo.py`` runs the console script).
"""

from __future__ import annotations

from typer.testing import CliRunner

from keel.cli.main import app


def test_keel_demo_help_names_the_acts_and_options() -> None:
    result = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "training pipeline" in result.output
    for option in ("--home", "--serve", "--port"):
        assert option in result.output


def test_keel_demo_refuses_a_port_out_of_range_before_running_anything(tmp_path) -> None:
    home = tmp_path / "never"
    result = CliRunner().invoke(app, ["demo", "--home", str(home), "--port", "70000"])
    assert result.exit_code == 2
    assert not home.exists()


def test_keel_demo_without_optuna_names_the_extra_to_install(tmp_path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed: import fails
    home = tmp_path / "never"
    result = CliRunner().invoke(app, ["demo", "--home", str(home)])
    assert result.exit_code == 1
    assert "pip install 'keel-mlops[hpo]'" in result.output
    assert not home.exists()
