"""Pipeline test fixtures: a fresh Keel home with the working directory beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def home(keel_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Yield a fresh Keel home; the working directory is an empty folder beside it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("COLUMNS", "200")  # wide CLI tables: no cell is cut short
    return keel_env.home
