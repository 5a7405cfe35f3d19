"""``keel demo`` end to end: the real console script in a subprocess, then the CLI on its home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEEL = Path(sys.executable).parent / "keel"
TIMEOUT = 180  # seconds; the demo itself takes ~10-15 s on two cores


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(HOME=str(tmp_path / "user-home"), COLUMNS="120", **extra)
    return env


def _keel(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEEL), *args], capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
    )


@pytest.fixture(scope="module")
def keel_has_demo() -> None:
    assert KEEL.is_file(), f"the keel console script is not installed at {KEEL}"
    help_text = subprocess.run(
        [str(KEEL), "--help"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "demo" in help_text.split(), "`keel demo` is not registered in the CLI"


@pytest.mark.slow
@pytest.mark.usefixtures("keel_has_demo")
def test_keel_demo_leaves_a_home_the_cli_can_explore(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    env = _env(tmp_path)

    done = _keel("demo", "--home", str(home), env=env)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert f"export KEEL_HOME={home}" in out
    assert "keel runs list --experiment breast-cancer" in out
    assert "keel models card breast-cancer-classifier 1" in out
    compare = next(line.split() for line in out.splitlines() if "keel runs compare" in line)

    # Every command the demo suggests works on the home it left behind.
    at_home = _env(tmp_path, KEEL_HOME=str(home))
    listed = _keel("runs", "list", "--experiment", "breast-cancer", "--json", env=at_home)
    assert listed.returncode == 0, listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    assert len(runs) == 10  # nine candidates and their parent sweep
    assert {r["status"] for r in runs} == {"finished"}

    compared = _keel(*compare[1:], env=at_home)
    assert compared.returncode == 0, compared.stderr
    assert "roc_auc" in compared.stdout

    shown = _keel("models", "show", "breast-cancer-classifier", "--json", env=at_home)
    assert shown.returncode == 0, shown.stderr
    assert '"champion"' in shown.stdout

    card = _keel("models", "card", "breast-cancer-classifier", "1", env=at_home)
    assert card.returncode == 0, card.stderr
    assert "breast_cancer_train" in card.stdout


@pytest.mark.slow
@pytest.mark.usefixtures("keel_has_demo")
def test_keel_demo_serve_starts_a_server_on_the_demo_home(tmp_path: Path) -> None:
    import re
    import signal
    import time

    import httpx

    env = _env(tmp_path)
    proc = subprocess.Popen(
        [str(KEEL), "demo", "--home", str(tmp_path / "served"), "--serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.search(r"Keel server for the demo: (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url, f"no server URL printed; stderr: {proc.stderr.read()[-2000:]}"
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
