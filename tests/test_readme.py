"""The README's SDK tour is code: it runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_opens_with_the_two_commands() -> None:
    first_block = README.read_text().split("```")[1]
    assert "make demo" in first_block
    assert "make test" in first_block


def test_the_sdk_tour_runs(keel_env, capsys) -> None:
    (tour,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    exec(compile(tour, str(README), "exec"), {"__name__": "readme_tour"})
    card = capsys.readouterr().out
    assert card.startswith("# cancer — version 1")
