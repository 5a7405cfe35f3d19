"""``keel demo`` end to end: the real console script in a subprocess (with ``--serve``), then
the CLI on the home it left while its server still runs.

One demo run: it trains as a pipeline, reruns it cached, serves and canaries, then drifts
the traffic until the alert rolls back and retrains; ``--serve`` then keeps a server on
the home until SIGINT.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

KEEL = Path(sys.executable).parent / "keel"
DEMO_TIMEOUT = 420  # seconds; the demo itself takes ~1-2 min on two busy cores
TIMEOUT = 120  # for each CLI command


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
@pytest.mark.timeout(DEMO_TIMEOUT + 4 * TIMEOUT)
@pytest.mark.usefixtures("keel_has_demo")
def test_keel_demo_closes_the_loop_and_leaves_a_home_the_cli_can_explore(tmp_path: Path) -> None:
    import httpx

    home = tmp_path / "demo-home"
    proc = subprocess.Popen(
        [str(KEEL), "demo", "--home", str(home), "--serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + DEMO_TIMEOUT
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            lines.append(line)
            found = re.search(r"Keel server for the demo: (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        out = "".join(lines)
        assert url, f"no server URL printed; stdout: {out[-3000:]}"
        assert "Traceback" not in out
        assert f"export KEEL_HOME={home}" in out
        assert "7 cached in " in out  # the rerun
        assert "Promoted: breast-cancer-classifier/2" in out
        assert "rollback   by keel-scheduler" in out
        assert "canary rollout of breast-cancer-prod started" in out
        health = httpx.get(f"{url}/health", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"

        # Every command the demo suggests works on the home it left behind.
        at_home = _env(tmp_path, KEEL_HOME=str(home))
        listed = _keel("runs", "list", "--experiment", "breast-cancer", "--json", env=at_home)
        assert listed.returncode == 0, listed.stderr
        runs = json.loads(listed.stdout)["runs"]
        assert len(runs) >= 3 * 8 + 6 + 14  # pipeline and step runs, and the trials
        compare = next(line.split() for line in lines if "keel runs compare" in line)
        compared = _keel(*compare[1:], env=at_home)
        assert compared.returncode == 0, compared.stderr
        assert "roc_auc" in compared.stdout
        shown = _keel("models", "show", "breast-cancer-classifier", "--json", env=at_home)
        assert shown.returncode == 0, shown.stderr
        assert '"champion"' in shown.stdout
        card = _keel("models", "card", "breast-cancer-classifier", "1", env=at_home)
        assert card.returncode == 0, card.stderr
        assert "breast_cancer_train" in card.stdout
        pipeline = next(line.split() for line in lines if "keel pipeline show" in line)
        steps = _keel(*pipeline[1:], env=at_home)
        assert steps.returncode == 0, steps.stderr
        assert "promote" in steps.stdout
        events = _keel("alerts", "events", env=at_home)
        assert events.returncode == 0, events.stderr
        assert "firing" in events.stdout
        assert (home / "monitoring-report.html").is_file()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
