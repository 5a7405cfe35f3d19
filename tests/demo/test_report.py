"""The demo's printing helpers, and that importing ``keel.demo`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from keel.demo.report import card_excerpt, next_steps


def test_card_excerpt_stops_before_the_signature() -> None:
    card = "# m — version 1\n\n## Metrics\n\n| a | 1 |\n\n## Signature\n\nInputs:\n"
    assert card_excerpt(card) == "# m — version 1\n\n## Metrics\n\n| a | 1 |\n"
    assert card_excerpt("# no sections\n") == "# no sections\n"


def test_next_steps_quote_a_home_with_spaces() -> None:
    steps = next_steps(
        Path("/tmp/my demo"), experiment="breast-cancer", model_name="m", version=3, compare=["a"]
    )
    commands = [command for command, _ in steps]
    assert "export KEEL_HOME='/tmp/my demo'" in commands
    assert "keel models card m 3" in commands
    assert commands[-1] == "keel server"  # the web UI on the same home


def test_next_steps_say_how_to_reach_keel_when_it_is_not_on_path(monkeypatch) -> None:
    import keel.demo.report as report

    monkeypatch.setattr(report.shutil, "which", lambda _: None)
    steps = next_steps(Path("/h"), experiment="e", model_name="m", version=1, compare=["a"])
    assert steps[0][0].startswith("source ")
    assert steps[0][0].endswith("activate")

    monkeypatch.setattr(report.shutil, "which", lambda _: "/usr/bin/keel")
    steps = next_steps(Path("/h"), experiment="e", model_name="m", version=1, compare=["a"])
    assert steps[0][0] == "export KEEL_HOME=/h"


def test_importing_the_demo_loads_no_heavy_dependency() -> None:
    # The CLI imports keel.demo to register `keel demo`; sklearn and friends load on use.
    heavy = ["sklearn", "pandas", "numpy", "sqlalchemy", "rich.progress"]
    code = (
        "import sys, json, keel.demo; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []
