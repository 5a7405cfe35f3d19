"""``keel demo`` through the CLI, in-process: it exits 0 having deployed and canaried.

The grid shrinks to two logistic regressions and the canary to one-second steps that
pass on anything but errors; ``tests/e2e/test_demo.py`` runs the real console script.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from keel import config
from keel.cli.main import app
from keel.demo import deployment as demo_deployment
from keel.demo import lifecycle as demo_lifecycle
from keel.demo.candidates import CANDIDATES
from keel.demo.deployment import CANARY, DEPLOYMENT

LOGISTIC = tuple(c for c in CANDIDATES if c.family == "logistic_regression")[:2]


@pytest.mark.slow
def test_keel_demo_exits_0_after_the_canary_and_says_where_to_look(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_lifecycle, "CANDIDATES", LOGISTIC)
    quick = {**CANARY, "interval_s": 1.0, "min_requests": 5, "max_wait": 30, "p99_slack_ms": 1e6}
    monkeypatch.setattr(demo_deployment, "CANARY", quick)
    monkeypatch.setenv("COLUMNS", "200")
    home = tmp_path / "demo home"

    result = CliRunner().invoke(app, ["demo", "--home", str(home)])
    config.reset_settings()

    assert result.exit_code == 0, result.output
    out = result.output
    assert "Canary of the challenger" in out
    assert "✓ step 3/3 at 100%: gate passed" in out
    assert "Promoted: breast-cancer-classifier/2 now serves 100% of breast-cancer-prod" in out
    assert "The canary ended promoted." in out
    commands = [line.strip() for line in out.splitlines()]
    assert f"keel deploy history {DEPLOYMENT}" in commands
    assert f"export KEEL_HOME='{home}'" in commands  # quoted: the path has a space
