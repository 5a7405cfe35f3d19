"""Helpers for the CLI tests: a ``keel`` runner, error-line checks, database tampering.

Every ``keel`` invocation is a new process in real life, so ``Cli`` forgets cached
settings, databases and stores before each one, as a fresh process would.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from keel.cli.main import app


def fresh_process() -> None:
    """Forget what a previous ``keel`` invocation cached, as a new process would."""
    import keel.stores
    from keel.config import reset_settings
    from keel.store.artifacts import forget_artifact_stores
    from keel.store.database import forget_databases

    reset_settings()
    forget_databases()
    forget_artifact_stores()
    keel.stores._current = None


class Cli:
    """Runs ``keel`` commands in-process; ``cli("runs", "list")``."""

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Result:
        fresh_process()
        return CliRunner().invoke(app, list(args), env=env)

    def json(self, *args: str) -> Any:
        """Run a command with ``--json``; check it succeeded and return the parsed document."""
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


def one_error_line(result: Result) -> str:
    """Return the single ``error: …`` line a failed command printed (and check its shape)."""
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def database(home: Path) -> sqlite3.Connection:
    """Open the home's SQLite metadata database directly (to tamper with it)."""
    return sqlite3.connect(home / "keel.db", isolation_level=None)


def set_schema_revision(home: Path, revision: str) -> None:
    """Overwrite the database's recorded schema revision, as another Keel would have."""
    fresh_process()
    conn = database(home)
    try:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    finally:
        conn.close()


@dataclass(frozen=True)
class Logged:
    """What ``logged`` created: two trained runs (model "m" v1, v2) and a diverged run."""

    small_c: str
    large_c: str
    diverged: str
