"""Starting scheduled and triggered pipeline runs as child processes, and recording them.

The server never runs user code: each run is ``python -m keel.pipelines.launch ID`` in
its own process, on the server's stores, its output in ``<home>/logs/pipelines/ID.log``.
A ``pipeline_dispatches`` row is written before the process starts, unique per event
(a schedule's due time, a trigger's version), so no event is started twice even by two
servers. A schedule's run also holds the lease ``schedule:NAME``, taken by the server
before it starts the process and renewed by the process while it runs (see
:mod:`keel.pipelines.launch`), so one schedule never has two runs at once; when the
process ends, this server releases it at once.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from keel.store.clock import now_ms
from keel.store.database import Database
from keel.store.leases import acquire_lease, release_lease
from keel.store.schema_scheduling import (
    pipeline_dispatches,
    pipeline_schedules,
    pipeline_triggers,
)

__all__ = [
    "LEASE_TTL_S",
    "LOST_AFTER_MS",
    "Launcher",
    "finish_dispatch",
    "insert_dispatch",
    "prune_logs",
    "reap_lost",
    "schedule_lease",
]

_log = logging.getLogger(__name__)
S, T, D = pipeline_schedules, pipeline_triggers, pipeline_dispatches
LEASE_TTL_S = 30.0  # renewed every HEARTBEAT_S by the run's process
HEARTBEAT_S = 5.0
LOST_AFTER_MS = 90_000  # a running dispatch with no heartbeat this long is lost
MAX_ERROR = 4_000


def schedule_lease(name: str) -> str:
    """Return the lease a run of schedule ``name`` holds while it runs."""
    return f"schedule:{name}"


def new_dispatch_id() -> str:
    """Return a fresh dispatch id (also the holder of its lease)."""
    return uuid.uuid4().hex


def insert_dispatch(conn: Any, values: dict[str, Any]) -> bool:
    """Insert a dispatch row in ``conn``'s transaction; False if its event already has one."""
    try:
        with conn.begin_nested():
            conn.execute(D.insert().values(**values))
    except sa_exc.IntegrityError:
        return False
    return True


def finish_dispatch(
    db: Database,
    dispatch_id: str,
    status: str,
    *,
    run_id: str | None = None,
    error: str | None = None,
    only_running: bool = True,
) -> bool:
    """Record how a dispatch ended, on it and on its schedule or trigger; release its lease.

    With ``only_running``, a dispatch already ended is left as it is (False returned).
    """
    now = now_ms()
    error = None if error is None else error[-MAX_ERROR:]
    with db.write() as conn:
        row = conn.execute(select(D).where(D.c.dispatch_id == dispatch_id)).first()
        if row is None or (only_running and row.status != "running"):
            return False
        conn.execute(
            D.update()
            .where(D.c.dispatch_id == dispatch_id)
            .values(status=status, run_id=run_id, error=error, ended_at=now, heartbeat_at=now)
        )
        table = S if row.source == "schedule" else T
        last = {"last_run_id": run_id, "last_status": status, "last_error": error}
        conn.execute(table.update().where(table.c.name == row.name).values(**last))
    if row.lease:
        release_lease(db, row.lease, dispatch_id)
    return True


def reap_lost(db: Database, now: int | None = None) -> int:
    """Mark running dispatches whose process stopped beating as lost; return how many."""
    now = now_ms() if now is None else now
    with db.read() as conn:
        stale = conn.execute(
            select(D.c.dispatch_id).where(
                D.c.status == "running", D.c.heartbeat_at < now - LOST_AFTER_MS
            )
        ).all()
    lost = 0
    for (dispatch_id,) in stale:
        lost += finish_dispatch(
            db, dispatch_id, "lost", error="its process stopped reporting (killed or crashed)"
        )
    return lost


def _log_dir() -> Path:
    from keel.config import get_settings

    folder = Path(get_settings().home) / "logs" / "pipelines"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


LOG_DAYS = 30  # a run's log is kept this long


def prune_logs(now_s: float | None = None, *, days: float = LOG_DAYS) -> int:
    """Delete run logs older than ``days``; return how many were deleted."""
    import time

    cutoff = (time.time() if now_s is None else now_s) - days * 86_400
    deleted = 0
    for log in _log_dir().glob("*.log"):
        try:
            if log.stat().st_mtime < cutoff:
                log.unlink()
                deleted += 1
        except OSError:  # another server pruned it first, or it is being written
            continue
    return deleted


def _tail(path: Path, limit: int = 2_000) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - limit))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class Launcher:
    """Starts dispatch processes on ``stores`` and watches each from its own thread, so a
    long run blocks neither the scheduler nor another run."""

    def __init__(self, stores: Any) -> None:
        self.stores = stores
        self.db: Database = stores.tracking.db
        self._threads: dict[str, threading.Thread] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self.started: list[str] = []  # every dispatch id this launcher started, in order

    def running(self) -> list[str]:
        """Return the dispatch ids whose process this launcher still watches."""
        with self._lock:
            return [k for k, t in self._threads.items() if t.is_alive()]

    def start(self, dispatch_id: str, workdir: str | None) -> None:
        """Start the process of an inserted dispatch; a failure to start is recorded on it."""
        env = dict(os.environ)
        env["KEEL_TRACKING_URI"] = self.stores.tracking_uri
        env["KEEL_ARTIFACT_URI"] = self.stores.artifact_uri
        cwd = workdir if workdir and Path(workdir).is_dir() else None
        try:
            log = _log_dir() / f"{dispatch_id}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(  # our own module, no shell
                    [sys.executable, "-m", "keel.pipelines.launch", dispatch_id],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,  # a Ctrl-C to the server does not kill the run
                )
        except OSError as exc:
            finish_dispatch(self.db, dispatch_id, "failed", error=f"could not start: {exc}")
            return
        try:
            with self.db.write() as conn:
                conn.execute(D.update().where(D.c.dispatch_id == dispatch_id).values(pid=proc.pid))
        except Exception:  # noqa: BLE001 - the pid is for people; the run is watched anyway
            _log.warning("could not record the pid of dispatch %s", dispatch_id)
        thread = threading.Thread(
            target=self._watch,
            args=(dispatch_id, proc, log),
            name=f"keel-dispatch-{dispatch_id[:8]}",
            daemon=True,
        )
        with self._lock:
            self._procs[dispatch_id] = proc
            self._threads[dispatch_id] = thread
            self.started.append(dispatch_id)
        thread.start()

    def _watch(self, dispatch_id: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        code = proc.wait()
        try:
            # The process records its own end; this catches one that died before it could.
            error = f"the run's process exited with code {code} before recording its end"
            tail = _tail(log)
            finish_dispatch(
                self.db, dispatch_id, "failed", error=f"{error}: {tail}" if tail else error
            )
        except Exception:  # noqa: BLE001 - a watcher must not die noisily; reap_lost catches up
            _log.exception("could not record the end of dispatch %s", dispatch_id)
        finally:
            with self._lock:
                self._procs.pop(dispatch_id, None)
                self._threads.pop(dispatch_id, None)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for every watched process; True if all ended."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = list(self._threads.values())
            if not threads:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            threads[0].join(left)

    def stop(self) -> None:
        """Terminate every process still running (a test's or a server's end)."""
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        self.wait(10.0)


def renew(db: Database, dispatch_id: str, lease: str | None) -> bool:
    """Beat for a running dispatch: renew its lease (if any) and its heartbeat.

    False if the lease is held by another holder (which must not happen while it runs).
    """
    held = True if lease is None else acquire_lease(db, lease, dispatch_id, LEASE_TTL_S)
    with db.write() as conn:
        conn.execute(
            D.update()
            .where(D.c.dispatch_id == dispatch_id, D.c.status == "running")
            .values(heartbeat_at=now_ms())
        )
    return held


def dispatch_values(
    *,
    dispatch_id: str,
    source: str,
    name: str,
    event_key: str,
    definition: Any,
    params: dict[str, str],
    holder: str,
    lease: str | None,
    due_at: int | None,
    now: int,
) -> dict[str, Any]:
    """Return a new running dispatch row for ``definition`` (a schedule or trigger row)."""
    return {
        "dispatch_id": dispatch_id,
        "source": source,
        "name": name,
        "event_key": event_key[:300],
        "pipeline": definition.pipeline,
        "workdir": definition.workdir,
        "params": json.dumps(params, sort_keys=True),
        "executor": definition.executor,
        "lease": lease,
        "status": "running",
        "holder": holder,
        "due_at": due_at,
        "started_at": now,
        "heartbeat_at": now,
    }
