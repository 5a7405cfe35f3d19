"""``keel serve`` as a real process with the prediction log: on by default, its flags, one
and several workers; a stopped server has flushed what it answered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prediction_support import Home, build_home, keel_home, oip_body
from tests.live_server import start_until_ready

KEEL = str(Path(sys.executable).with_name("keel"))
START_S = 60.0


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return build_home(tmp_path_factory.mktemp("prediction-log-cli"))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    return {**env, "KEEL_HOME": str(home)}


@contextmanager
def keel_serve(home: Path, *args: str) -> Iterator[str]:
    """Run ``keel serve models:/cancer/1 ARGS`` until ready; stop it (SIGTERM) at the end."""
    process, (port,) = start_until_ready(
        lambda ports: [KEEL, "serve", "models:/cancer/1", "--port", str(ports[0]), *args],
        timeout=START_S,
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the whole group: workers flush too
        process.communicate(timeout=START_S)


def _send(url: str, home: Home, n: int) -> list[str]:
    ids = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(n):
            answer = client.post("/v2/models/cancer/infer", json=oip_body(home.X, i, 2))
            assert answer.status_code == 200, answer.text
            ids.append(answer.headers["keel-request-id"])
    return ids


def _logged(home: Home) -> set[str]:
    import keel

    with keel_home(home.path):
        return set(keel.read_predictions("cancer", with_feedback=False)["request_id"])


def test_keel_serve_logs_by_default_and_not_when_told(home: Home) -> None:
    with keel_serve(home.path) as url:
        ids = _send(url, home, 3)
    assert set(ids) <= _logged(home)
    with keel_serve(home.path, "--no-log-predictions") as url:
        unlogged = _send(url, home, 2)
    assert not set(unlogged) & _logged(home)


def test_sample_rate_flag_and_several_workers(home: Home) -> None:
    import keel

    with keel_serve(home.path, "--workers", "2", "--log-sample-rate", "0") as url:
        ids = _send(url, home, 6)
    with keel_home(home.path):
        df = keel.read_predictions("cancer")
    mine = df[df["request_id"].isin(ids)]
    assert len(mine) == 12
    assert not mine["sampled"].any()
    assert mine["output.predict"].notna().all()


@pytest.mark.parametrize("rate", ["2", "-0.5", "lots"])
def test_a_bad_sample_rate_exits_2(home: Home, rate: str) -> None:
    done = subprocess.run(
        [KEEL, "serve", "models:/cancer/1", "--log-sample-rate", rate],
        env=_env(home.path),
        capture_output=True,
        text=True,
        timeout=START_S,
        check=False,
    )
    assert done.returncode == 2
    assert "log-sample-rate" in done.stderr
