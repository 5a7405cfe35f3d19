"""``keel monitor windows``: bad input is refused with one line and exit code 2."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from keel.cli.main import app


def keel_cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("window", ["0m", "-1h", "abc", "367d", ""])
def test_bad_window_exits_2(keel_env: object, window: str) -> None:
    result = keel_cli("monitor", "windows", "--deployment", "churn-prod", "--window", window)
    assert result.exit_code == 2, result.output
    assert "window" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("since", ["0h", "forever", "-5m"])
def test_bad_since_exits_2(keel_env: object, since: str) -> None:
    result = keel_cli("monitor", "windows", "--deployment", "churn-prod", "--since", since)
    assert result.exit_code == 2, result.output
    assert "--since" in result.output


def test_unknown_and_hostile_deployments_are_refused(keel_env: object) -> None:
    unknown = keel_cli("monitor", "windows", "--deployment", "no-such-deployment")
    assert unknown.exit_code != 0
    assert "no-such-deployment" in unknown.output
    hostile = keel_cli("monitor", "windows", "--deployment", "../../etc/passwd")
    assert hostile.exit_code == 2
    assert "deployment name" in hostile.output
