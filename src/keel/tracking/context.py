"""Facts about where a run was started: user, source file, git commit and dirty flag."""

from __future__ import annotations

import functools
import getpass
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceInfo", "current_user", "source_info", "writer_id"]


@dataclass(frozen=True)
class SourceInfo:
    """The program that started a run and the git state of its folder."""

    source: str | None
    git_commit: str | None
    git_dirty: bool | None


def current_user() -> str:
    """Return the login name of this process's user ("unknown" if there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@functools.cache
def writer_id() -> str:
    """Return an id for this process as a run writer: host, pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.cache
def _git_state(folder: Path) -> tuple[str | None, bool | None]:
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return commit.strip(), (bool(status.strip()) if status is not None else None)


def source_info() -> SourceInfo:
    """Return the running script and the git commit of its folder (None outside git)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and Path(path).is_file():
        source = str(Path(path).resolve())
        folder = Path(source).parent
    else:
        source = sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>"
        folder = Path.cwd()
    commit, dirty = _git_state(folder)
    return SourceInfo(source, commit, dirty)
