"""Figure (e): search ``--runs`` runs (10 params, 10 metrics each) through a tracking server.

The data and the search are those of figure (b) (``run_search.py``): params ``p0..p9`` and
metrics ``m0..m9`` from one seeded generator, then ``metrics.m0 > 0.5`` (about half the
runs) ordered by ``metrics.m1 DESC``, at most 1,000 runs, each with its params and latest
metrics — here over 10,000 runs and through a server on 127.0.0.1 (``keel server`` or
``mlflow server --workers 1``, started and stopped by the job; see ``_servers.py``).

Creating the runs is set-up, untimed for the figure but reported, and done the fastest way
each side allows, straight into the SQLite file the server then opens:

* ``keel`` — one transaction of bulk inserts into Keel's tables (runs, params, metrics,
  latest_metrics) through its SQLAlchemy tables; its store API costs ~7-13 ms a run here;
* ``mlflow`` — the same into MLflow's tables (runs, tags, params, metrics,
  latest_metrics) through its SQLAlchemy models, because its store API costs ~75 ms a run
  here (12 minutes for 10,000 runs).

Timed, after one untimed warm-up call, ``--searches`` times: ``keel.search_runs(experiment=…,
…)`` with the SDK in remote mode, and ``MlflowClient(<server>).search_runs([id], …)``.
Every answer is checked against brute force (count, order, 10 params and 10 metrics per
run), and the number of runs in the server's file is checked first.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _bench import Timer, check, main, parse_args
from _servers import keel_server, mlflow_server
from run_search import FILTER, MAX_RESULTS, ORDER_BY, Row, dataset, measure_search

SYSTEMS = ("keel", "mlflow")


def count_runs(db: Path, sql: str, *params: object) -> int:
    """Return the one integer ``sql`` selects from the SQLite file ``db`` (read-only)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute(sql, params).fetchone()[0])
    finally:
        con.close()


def create_keel_runs(
    tracking: Any,
    experiment_id: str,
    data: Sequence[tuple[dict[str, str], dict[str, float]]],
    prefix: str = "run",
) -> None:
    """Write ``data`` as finished runs of ``experiment_id`` into a Keel SQL tracking store.

    One transaction of multi-row inserts into Keel's tables (runs, params, metrics,
    latest_metrics; no audit entries): the counterpart of MLflow's bulk set-up. Keel's
    store API (``create_run`` + ``log_batch`` + ``end_run``) takes ~7-13 ms a run here.
    Each runs row carries the JSON copies of its params, tags and latest metrics, written
    with the helpers the store writes them with (``keel.tracking.run_json``).
    """
    from keel.store import schema as t
    from keel.tracking.entities import RunStatus
    from keel.tracking.run_json import EMPTY, dump_strings, metric_fragment, metrics_text

    start = int(time.time() * 1000) - len(data)

    runs, params_rows, metric_rows, latest_rows = [], [], [], []
    for r, (params, metrics) in enumerate(data):
        run_id = uuid.uuid4().hex
        ts = start + r
        runs.append(
            {
                "run_id": run_id,
                "experiment_id": experiment_id,
                "name": f"{prefix}-{r}",
                "status": RunStatus.FINISHED.value,
                "start_time": ts,
                "end_time": ts,
                "user": "bench",
                "source": None,
                "git_commit": None,
                "git_dirty": None,
                "parent_run_id": None,
                "lifecycle_stage": "active",
                "heartbeat_at": ts,
                "writer": None,
                "params_json": dump_strings(params),
                "metrics_json": metrics_text(
                    {k: metric_fragment(repr(float(v))) for k, v in metrics.items()}
                ),
                "tags_json": EMPTY,
            }
        )
        params_rows.extend({"run_id": run_id, "key": k, "value": v} for k, v in params.items())
        for key, value in metrics.items():
            row = {
                "run_id": run_id,
                "key": key,
                "value": value,
                "timestamp": ts,
                "step": 0,
                "is_nan": False,
            }
            metric_rows.append(row)
            latest_rows.append({**row, "value_text": repr(float(value))})
    with tracking.db.write() as conn:
        for table, rows in (
            (t.runs, runs),
            (t.params, params_rows),
            (t.metrics, metric_rows),
            (t.latest_metrics, latest_rows),
        ):
            if rows:
                conn.execute(table.insert(), rows)


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    db = args.workdir / "server.db"
    os.environ["KEEL_TRACKING_URI"] = f"sqlite:///{db}"
    import keel
    from keel.stores import current_stores

    data = dataset(args)
    tracking = current_stores().tracking
    with Timer() as create:
        experiment_id = tracking.create_experiment("bench").experiment_id
        create_keel_runs(tracking, experiment_id, data)
    stored = count_runs(db, "SELECT count(*) FROM runs WHERE experiment_id = ?", experiment_id)
    check(stored == args.runs, f"keel stored {stored} runs, expected {args.runs}")

    with keel_server(args.workdir, db) as server:
        keel.set_tracking_uri(server.url)
        remote = current_stores().tracking
        check(type(remote).__name__ == "RestTrackingStore", f"not remote: {remote!r}")

        def search() -> list[Row]:
            found = keel.search_runs(
                experiment="bench", filter=FILTER, order_by=ORDER_BY, max_results=MAX_RESULTS
            )
            return [(dict(r.params), dict(r.metrics)) for r in found]

        figures = creation(args.runs, create.seconds)
        figures.update(measure_search(search, data, "keel", args.searches))
        figures["server_startup_seconds"] = server.startup_seconds
    return {"figures": figures, "creation": "bulk insert into Keel's tables"}


def create_mlflow_runs(store: Any, data: Sequence[tuple[dict[str, str], dict[str, float]]]) -> str:
    """Bulk-insert ``data`` as finished runs of a new experiment ``bench``; return its id."""
    from mlflow.store.tracking.dbmodels.models import (
        SqlLatestMetric,
        SqlMetric,
        SqlParam,
        SqlRun,
        SqlTag,
    )
    from mlflow.utils.uri import append_to_uri_path

    experiment_id = store.create_experiment("bench")
    location = store.get_experiment(experiment_id).artifact_location
    start = int(time.time() * 1000) - len(data)
    runs, tags, params, metrics = [], [], [], []
    for r, (run_params, run_metrics) in enumerate(data):
        run_id = uuid.uuid4().hex
        ts = start + r
        runs.append(
            {
                "run_uuid": run_id,
                "name": f"run-{r}",
                "source_type": "UNKNOWN",
                "source_name": "",
                "entry_point_name": "",
                "user_id": "bench",
                "status": "FINISHED",
                "start_time": ts,
                "end_time": ts,
                "deleted_time": None,
                "source_version": "",
                "lifecycle_stage": "active",
                "artifact_uri": append_to_uri_path(location, run_id, "artifacts"),
                "experiment_id": int(experiment_id),
            }
        )
        tags.append({"run_uuid": run_id, "key": "mlflow.runName", "value": f"run-{r}"})
        params.extend({"run_uuid": run_id, "key": k, "value": v} for k, v in run_params.items())
        metrics.extend(
            {
                "run_uuid": run_id,
                "key": k,
                "value": v,
                "timestamp": ts,
                "step": 0,
                "is_nan": False,
            }
            for k, v in run_metrics.items()
        )
    with store.ManagedSessionMaker(read_only=False) as session:
        session.execute(SqlRun.__table__.insert(), runs)
        session.execute(SqlTag.__table__.insert(), tags)
        session.execute(SqlParam.__table__.insert(), params)
        session.execute(SqlMetric.__table__.insert(), metrics)
        session.execute(SqlLatestMetric.__table__.insert(), metrics)
    return str(experiment_id)


def bench_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    db = args.workdir / "mlflow-server.db"
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    data = dataset(args)
    store = SqlAlchemyStore(f"sqlite:///{db}", str(args.workdir / "mlartifacts"))
    with Timer() as create:
        experiment_id = create_mlflow_runs(store, data)
    store.engine.dispose()
    stored = count_runs(db, "SELECT count(*) FROM runs WHERE experiment_id = ?", int(experiment_id))
    check(stored == args.runs, f"mlflow stored {stored} runs, expected {args.runs}")

    with mlflow_server(args.workdir, db) as server:
        from mlflow import MlflowClient

        client = MlflowClient(server.url)

        def search() -> list[Row]:
            found = client.search_runs(
                [experiment_id], filter_string=FILTER, order_by=ORDER_BY, max_results=MAX_RESULTS
            )
            return [(dict(r.data.params), dict(r.data.metrics)) for r in found]

        figures = creation(args.runs, create.seconds)
        figures.update(measure_search(search, data, "mlflow", args.searches))
        figures["server_startup_seconds"] = server.startup_seconds
    return {"figures": figures, "creation": "bulk insert into MLflow's tables"}


def creation(runs: int, seconds: float) -> dict[str, Any]:
    return {"runs": runs, "create_seconds": seconds, "create_ms_per_run": seconds / runs * 1000}


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {"keel": bench_keel, "mlflow": bench_mlflow}[args.system](args)


if __name__ == "__main__":
    arguments = parse_args(__doc__.splitlines()[0], SYSTEMS, {"runs": 10_000, "searches": 30})
    packages = {
        "keel": ("keel-mlops", "sqlalchemy", "uvicorn", "httpx"),
        "mlflow": ("mlflow", "sqlalchemy", "uvicorn"),
    }
    main("e", arguments, run, packages[arguments.system])
