"""Figure (d): log N metric points to one run through a tracking server on 127.0.0.1.

Each job starts its own server (``keel server`` or ``mlflow server --workers 1``, a real
subprocess on a free loopback port, stopped when the job ends; see ``_servers.py``), logs
one untimed warm-up run through it, then times:

* ``keel`` — the SDK in remote mode (tracking URI ``http://127.0.0.1:<port>``):
  ``run.log_metric`` in a Python loop inside ``keel.start_run``; the buffer sends batches
  in the background and leaving the ``with`` block flushes it, so every point is committed
  by the server when the clock stops.
* ``keel_rest`` — Keel's REST client called directly, like ``MlflowClient.log_batch``:
  create the run, ``log_batch`` with ``--batch`` (1,000) points per request, end the run.
* ``mlflow_log_batch`` — ``MlflowClient.log_batch`` with 1,000 metrics per call (MLflow's
  maximum) for all N points, between ``create_run`` and ``set_terminated``.
* ``mlflow_log_metric`` — fluent ``mlflow.log_metric`` in a loop, one request per point;
  measured on ``--calls`` points and reported per point.

Every job then counts the run's metric rows in the server's SQLite file and fails unless
the count (and the number of distinct steps) equals what it logged.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from _bench import Timer, check, main, parse_args
from _servers import Server, keel_server, mlflow_server

SYSTEMS = ("keel", "keel_rest", "mlflow_log_batch", "mlflow_log_metric")
MLFLOW_MAX_BATCH = 1000


def counts(db: Path, table_run_column: str, run_id: str) -> tuple[int, int]:
    """Return (rows, distinct steps) of metric ``loss`` of ``run_id`` in the SQLite file."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows, steps = con.execute(
            f"SELECT count(*), count(DISTINCT step) FROM metrics "
            f"WHERE {table_run_column} = ? AND key = 'loss'",
            (run_id,),
        ).fetchone()
        return int(rows), int(steps)
    finally:
        con.close()


def verify(db: Path, column: str, run_id: str, n: int, system: str) -> None:
    rows, steps = counts(db, column, run_id)
    check(rows == n, f"{system} stored {rows} metric rows, expected {n}")
    check(steps == n, f"{system} stored {steps} distinct steps, expected {n}")


def result(
    points: int, seconds: float, server: Server, batch: int = 0, **extra: Any
) -> dict[str, Any]:
    figures = {
        "points": points,
        "seconds": seconds,
        "points_per_s": points / seconds,
        "us_per_point": seconds / points * 1e6,
        "server_startup_seconds": server.startup_seconds,
    }
    if batch:
        figures["batch_size"] = batch
    return {"figures": figures, **extra}


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    db = args.workdir / "server.db"
    with keel_server(args.workdir, db) as server:
        os.environ["KEEL_TRACKING_URI"] = server.url
        import keel
        from keel.stores import current_stores

        tracking = current_stores().tracking
        check(type(tracking).__name__ == "RestTrackingStore", f"not remote: {tracking!r}")
        with keel.start_run(experiment="warmup", run_name="warmup") as run:
            run.log_metric("warmup", 0.0, step=0)

        n = args.points
        if args.system == "keel":
            with Timer() as timer:
                with keel.start_run(experiment="bench", run_name="metrics") as run:
                    for i in range(n):
                        run.log_metric("loss", float(i), step=i)
            run_id = run.run_id
            batch, extra = 0, {"batching": "SDK buffer (background flush)"}
        else:
            from keel.tracking.entities import RunStatus

            experiment_id = tracking.create_experiment("bench").experiment_id
            size = args.batch
            with Timer() as timer:
                now = int(time.time() * 1000)
                run_id = tracking.create_run(
                    experiment_id, name="metrics", user="bench", start_time=now
                ).run_id
                for start in range(0, n, size):
                    ts = int(time.time() * 1000)
                    rows = [("loss", float(i), ts, i) for i in range(start, min(start + size, n))]
                    tracking.log_batch(run_id, metrics=rows)
                tracking.end_run(run_id, RunStatus.FINISHED, int(time.time() * 1000))
            batch, extra = size, {}
        verify(db, "run_id", run_id, n, args.system)
        return result(n, timer.seconds, server, batch, **extra)


def bench_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    db = args.workdir / "mlflow-server.db"
    with mlflow_server(args.workdir, db) as server:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Metric

        mlflow.set_tracking_uri(server.url)
        experiment_id = mlflow.set_experiment("bench").experiment_id
        with mlflow.start_run(run_name="warmup"):
            mlflow.log_metric("warmup", 0.0, step=0)

        if args.system == "mlflow_log_metric":
            n = min(args.calls, args.points)
            with Timer() as timer:
                with mlflow.start_run(run_name="metrics") as run:
                    for i in range(n):
                        mlflow.log_metric("loss", float(i), step=i)
            run_id = run.info.run_id
            batch, extra = 0, {"extrapolated_from": n, "target_points": args.points}
        else:
            client = MlflowClient(server.url)
            n = args.points
            with Timer() as timer:
                run_id = client.create_run(experiment_id, run_name="metrics").info.run_id
                for start in range(0, n, MLFLOW_MAX_BATCH):
                    batch = [
                        Metric("loss", float(i), int(time.time() * 1000), i)
                        for i in range(start, min(start + MLFLOW_MAX_BATCH, n))
                    ]
                    client.log_batch(run_id, metrics=batch)
                client.set_terminated(run_id)
            batch, extra = MLFLOW_MAX_BATCH, {}
        verify(db, "run_uuid", run_id, n, args.system)
        return result(n, timer.seconds, server, batch, **extra)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.system.startswith("keel"):
        return bench_keel(args)
    return bench_mlflow(args)


if __name__ == "__main__":
    arguments = parse_args(
        __doc__.splitlines()[0],
        SYSTEMS,
        {"points": 100_000, "calls": 1_000, "batch": MLFLOW_MAX_BATCH},
    )
    packages = (
        ("keel-mlops", "sqlalchemy", "uvicorn", "httpx")
        if arguments.system.startswith("keel")
        else ("mlflow", "sqlalchemy", "uvicorn")
    )
    main("d", arguments, run, packages)
