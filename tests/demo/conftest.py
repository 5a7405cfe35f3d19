"""One whole demo per test session, shared by every test that reads what it made.

The demo (two pipeline runs and a rerun, a live server with traffic and a canary, then
drifted traffic, an alert, a rollback and a retraining in a child process) takes about a
minute on a busy two-core machine, so it runs once; the tests read its home back through
the public SDK. Once per session means once per xdist worker: the tests that read it
share one xdist group, so one worker runs the demo (it ran on both, ~180 s each under load).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from keel import config
from keel.demo import DemoResult, run_demo


@dataclass(frozen=True)
class Demo:
    result: DemoResult
    output: str


def quiet_console() -> Console:
    """A console that records what the demo prints (120 columns, no terminal)."""
    return Console(file=io.StringIO(), width=120)


DEMO_GROUP = "demo"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test that reads the shared demo in one xdist group (see the module doc)."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and "demo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(DEMO_GROUP))


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Run the whole demo once, in a home of its own, and keep what it printed."""
    console = quiet_console()
    result = run_demo(tmp_path_factory.mktemp("demo") / "home", console=console)
    return Demo(result, console.file.getvalue())  # type: ignore[attr-defined]


@pytest.fixture
def at_demo_home(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Iterator[Demo]:
    """Point Keel at the demo's home, as ``KEEL_HOME=<home> keel …`` would."""
    monkeypatch.setenv("KEEL_HOME", str(demo.result.home))
    monkeypatch.delenv("KEEL_TRACKING_URI", raising=False)
    monkeypatch.delenv("KEEL_ARTIFACT_URI", raising=False)
    config.reset_settings()
    yield demo
    config.reset_settings()
