"""Start and always stop a tracking server (``keel server`` or ``mlflow server``) for a benchmark.

Standard library only, like ``_bench``: the server benchmarks run in Keel's interpreter and
in MLflow's. A server here

* binds 127.0.0.1 only, on a free port picked just before it starts;
* runs as a real subprocess in its own process group, its output in a log file in the
  job's folder (the last lines are copied to standard error when it stops);
* is stopped by ``Server.stop`` (SIGTERM to the group, SIGKILL after a grace period), which
  ``with Server(...)`` calls on every exit, errors included;
* also dies with the benchmark script if that is killed (the runner's timeout sends
  SIGKILL, which no ``finally`` sees): a two-line launcher asks the kernel for SIGTERM
  when its parent dies (``PR_SET_PDEATHSIG``) and then execs the server; ``mlflow server``
  forwards that SIGTERM to its uvicorn child, ``keel server`` (one worker) is one process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from _bench import BenchmarkError

__all__ = ["Server", "clean_env", "free_port", "keel_server", "mlflow_server"]

HOST = "127.0.0.1"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without ``KEEL_*``/``MLFLOW_*`` settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "MLFLOW_"))}
    env.update(extra)
    return env


# Run as ``python -c _LAUNCHER <parent pid> <command…>``: ask for SIGTERM when the benchmark
# script dies, then become the server (the request survives exec).
_LAUNCHER = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the parent died before prctl took effect
os.execv(sys.argv[2], sys.argv[2:])
"""


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Server:
    """A server subprocess on 127.0.0.1:``port``, ready once ``health_path`` answers 200."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str],
        log: Path,
        cwd: Path,
        health_path: str = "/health",
        startup_timeout: float = 180.0,
    ) -> None:
        self.name = name
        self.command = [str(c) for c in command]
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.env = dict(env)
        self.log = log
        self.cwd = cwd
        self.health_path = health_path
        self.startup_timeout = startup_timeout
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until its health endpoint answers 200."""
        parent = os.getpid()
        print(f"starting {self.name}: {' '.join(self.command)}", file=sys.stderr)
        with self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, str(parent), *self.command],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends all of it
            )
        started = time.perf_counter()
        deadline = started + self.startup_timeout
        while True:
            code = self._proc.poll()
            if code is not None:
                tail = self.tail()
                self.stop()
                raise BenchmarkError(
                    f"{self.name} exited with code {code} before it was ready: {tail}"
                )
            try:
                with urllib.request.urlopen(self.url + self.health_path, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.perf_counter() > deadline:
                self.stop()
                raise BenchmarkError(
                    f"{self.name} did not answer {self.health_path} within "
                    f"{self.startup_timeout:.0f} s"
                )
            time.sleep(0.1)
        self.startup_seconds = time.perf_counter() - started
        print(f"{self.name} ready on {self.url} in {self.startup_seconds:.1f} s", file=sys.stderr)

    def stop(self, grace: float = 15.0) -> None:
        """End the server's whole process group: SIGTERM, then SIGKILL after ``grace`` s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        # Children (uvicorn under ``mlflow server``) may outlive the first process.
        while (proc.poll() is None or _group_alive(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None or _group_alive(proc.pid):
            _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"{self.name} stopped; last lines of its log:\n{self.tail(40)}", file=sys.stderr)

    def tail(self, lines: int = 5) -> str:
        """The last ``lines`` lines of the server's log."""
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"


def keel_server(workdir: Path, db: Path) -> Server:
    """``keel server`` on a free port, its metadata in the SQLite file ``db``."""
    port = free_port()
    keel = Path(sys.executable).with_name("keel")
    env = clean_env(
        KEEL_HOME=str(workdir / ".keel-server"),
        KEEL_TRACKING_URI=f"sqlite:///{db}",
        PYTHONUNBUFFERED="1",
    )
    return Server(
        "keel server",
        [keel, "server", "--host", HOST, "--port", str(port), "--workers", "1"],
        port=port,
        env=env,
        log=workdir / "keel-server.log",
        cwd=workdir,
    )


def mlflow_server(workdir: Path, db: Path) -> Server:
    """``mlflow server`` (uvicorn, one worker) on a free port, backed by the SQLite file ``db``.

    Its background job runner (huey, for LLM features a tracking benchmark never uses) is
    switched off, so it does not compete for the CPU; nothing else is changed.
    """
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    env = clean_env(
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        GIT_PYTHON_REFRESH="quiet",
        PYTHONUNBUFFERED="1",
    )
    command = [
        mlflow,
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--default-artifact-root",
        str(workdir / "mlartifacts"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return Server(
        "mlflow server", command, port=port, env=env, log=workdir / "mlflow-server.log", cwd=workdir
    )
