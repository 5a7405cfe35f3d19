"""Figure (a): log N metric points to one run, until every point is durable.

Systems:

* ``keel`` — ``run.log_metric`` in a Python loop inside ``keel.start_run``; leaving the
  ``with`` block flushes the buffer, so the time covers the points being committed.
* ``mlflow_log_metric`` — ``mlflow.log_metric`` in a loop (one SQL transaction per call).
  It costs milliseconds per call, so it is measured on ``--calls`` points (fewer than N)
  and reported per point.
* ``mlflow_log_batch`` — ``MlflowClient.log_batch`` with 1,000 metrics per call (MLflow's
  maximum) for all N points, Metric objects built in the same loop.
* ``floor`` — raw ``sqlite3`` (WAL, synchronous=NORMAL): one ``executemany`` of N prebuilt
  tuples in one transaction into a table shaped like Keel's ``metrics`` table. Building the
  tuples is *not* timed.
* ``floor_loop`` — the same, but the tuples are built in the timed Python loop (with a
  timestamp per point, as a logging API has to).

Every system then counts the rows it wrote and fails unless the count equals what it logged.
Each system also logs one warm-up run first so that creating the database and importing the
library are not part of the figure.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from _bench import Timer, check, main, parse_args

SYSTEMS = ("keel", "mlflow_log_metric", "mlflow_log_batch", "floor", "floor_loop")
MLFLOW_MAX_BATCH = 1000


def count_rows(db: Path, sql: str, *params: object) -> int:
    """Return the single integer that ``sql`` selects from the SQLite file ``db``."""
    con = sqlite3.connect(db)
    try:
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()


def result(points: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "figures": {
            "points": points,
            "seconds": seconds,
            "points_per_s": points / seconds,
            "us_per_point": seconds / points * 1e6,
        },
        **extra,
    }


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("KEEL_HOME", str(args.workdir / ".keel"))
    import keel

    db = args.workdir / "keel.db"
    keel.set_tracking_uri(f"sqlite:///{db}")
    with keel.start_run(experiment="warmup", run_name="warmup") as run:
        run.log_metric("warmup", 0.0, step=0)

    n = args.points
    with Timer() as timer:
        with keel.start_run(experiment="bench", run_name="metrics") as run:
            for i in range(n):
                run.log_metric("loss", float(i), step=i)
    # Count straight from the file, after the run has exited: the points must be durable.
    written = count_rows(db, "SELECT count(*) FROM metrics WHERE key = 'loss'")
    check(written == n, f"keel wrote {written} metric rows, expected {n}")
    steps = count_rows(db, "SELECT count(DISTINCT step) FROM metrics WHERE key = 'loss'")
    check(steps == n, f"keel wrote {steps} distinct steps, expected {n}")
    return result(n, timer.seconds)


def _mlflow_setup(args: argparse.Namespace) -> tuple[Any, Path, str]:
    import mlflow

    db = args.workdir / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    experiment_id = mlflow.set_experiment("bench").experiment_id
    with mlflow.start_run(run_name="warmup"):
        mlflow.log_metric("warmup", 0.0, step=0)
    return mlflow, db, experiment_id


def bench_mlflow_log_metric(args: argparse.Namespace) -> dict[str, Any]:
    mlflow, db, _ = _mlflow_setup(args)
    n = min(args.calls, args.points)
    with Timer() as timer:
        with mlflow.start_run(run_name="metrics") as run:
            for i in range(n):
                mlflow.log_metric("loss", float(i), step=i)
    run_id = run.info.run_id
    written = count_rows(
        db, "SELECT count(*) FROM metrics WHERE run_uuid = ? AND key = 'loss'", run_id
    )
    check(written == n, f"mlflow wrote {written} metric rows, expected {n}")
    return result(n, timer.seconds, extrapolated_from=n, target_points=args.points)


def bench_mlflow_log_batch(args: argparse.Namespace) -> dict[str, Any]:
    _, db, experiment_id = _mlflow_setup(args)
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()
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
    written = count_rows(
        db, "SELECT count(*) FROM metrics WHERE run_uuid = ? AND key = 'loss'", run_id
    )
    check(written == n, f"mlflow wrote {written} metric rows, expected {n}")
    return result(n, timer.seconds, batch_size=MLFLOW_MAX_BATCH)


FLOOR_SCHEMA = """
CREATE TABLE metrics (
    run_id VARCHAR(32) NOT NULL,
    key VARCHAR(250) NOT NULL,
    value FLOAT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    is_nan BOOLEAN NOT NULL
);
CREATE INDEX ix_metrics_run_id_key_step ON metrics (run_id, key, step);
"""


def _floor_connect(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(FLOOR_SCHEMA)
    return con


def bench_floor(args: argparse.Namespace, *, build_in_loop: bool) -> dict[str, Any]:
    db = args.workdir / "floor.db"
    con = _floor_connect(db)
    run_id = os.urandom(16).hex()
    n = args.points
    insert = "INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)"
    if build_in_loop:
        with Timer() as timer:
            rows = [(run_id, "loss", float(i), int(time.time() * 1000), i, 0) for i in range(n)]
            con.execute("BEGIN")
            con.executemany(insert, rows)
            con.execute("COMMIT")
    else:
        now = int(time.time() * 1000)
        rows = [(run_id, "loss", float(i), now, i, 0) for i in range(n)]
        with Timer() as timer:
            con.execute("BEGIN")
            con.executemany(insert, rows)
            con.execute("COMMIT")
    con.close()
    written = count_rows(db, "SELECT count(*) FROM metrics WHERE run_id = ?", run_id)
    check(written == n, f"floor wrote {written} metric rows, expected {n}")
    return result(n, timer.seconds)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.system == "keel":
        return bench_keel(args)
    if args.system == "mlflow_log_metric":
        return bench_mlflow_log_metric(args)
    if args.system == "mlflow_log_batch":
        return bench_mlflow_log_batch(args)
    return bench_floor(args, build_in_loop=args.system == "floor_loop")


if __name__ == "__main__":
    arguments = parse_args(__doc__.splitlines()[0], SYSTEMS, {"points": 100_000, "calls": 2_000})
    packages = {
        "keel": ("keel-mlops", "sqlalchemy"),
        "mlflow_log_metric": ("mlflow", "sqlalchemy"),
        "mlflow_log_batch": ("mlflow", "sqlalchemy"),
    }.get(arguments.system, ())
    main("a", arguments, run, packages)
