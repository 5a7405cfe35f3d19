"""Figure (b): create runs with 10 params and 10 metrics each, then search them by a metric.

Every system creates the same ``--runs`` runs (params ``p0..p9``, metrics ``m0..m9`` drawn
from one seeded generator, one value each), timing the creation, then runs the same search
``--searches`` times after one untimed warm-up call and reports the median and p90:

    filter  metrics.m0 > 0.5        (about half the runs)
    order   metrics.m1 DESC
    limit   1,000, each run returned with its params and latest metrics

Systems:

* ``keel`` — ``keel.start_run`` + ``run.log_params`` + ``run.log_metrics`` per run, then
  ``keel.search_runs(experiment=…, filter=…, order_by=…, max_results=1000)``.
* ``mlflow`` — ``mlflow.start_run`` + ``mlflow.log_params`` + ``mlflow.log_metrics`` per
  run, then ``MlflowClient.search_runs`` (a list of Run objects); ``mlflow.search_runs``
  (a pandas DataFrame, what most users call) is measured on the same data as a second figure.
* ``floor`` — raw ``sqlite3`` on tables shaped like Keel's (runs, params, latest_metrics
  with an index on (key, value)): one transaction per run, then hand-written SQL — the
  filtered, ordered run ids, then their params and latest metrics — assembled into dicts.

Each search result is checked against brute force: the count of matched runs, the order by
``m1``, and 10 params and 10 metrics on every run; a mismatch fails the script.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from _bench import Timer, check, main, median, parse_args, percentile

SYSTEMS = ("keel", "mlflow", "floor")
N_KEYS = 10
FILTER = "metrics.m0 > 0.5"
ORDER_BY = ["metrics.m1 DESC"]
MAX_RESULTS = 1000

Row = tuple[dict[str, str], dict[str, float]]


def dataset(args: argparse.Namespace) -> list[tuple[dict[str, str], dict[str, float]]]:
    """Return each run's params and metrics, the same for every system."""
    rng = random.Random(args.seed)
    return [
        (
            {f"p{j}": f"value-{r}-{j}" for j in range(N_KEYS)},
            {f"m{j}": rng.random() for j in range(N_KEYS)},
        )
        for r in range(args.runs)
    ]


def verify(found: Sequence[Row], data: Sequence[Row], system: str) -> None:
    """Fail unless ``found`` is exactly what brute force over ``data`` gives."""
    matched = [metrics for _, metrics in data if metrics["m0"] > 0.5]
    expected = min(len(matched), MAX_RESULTS)
    check(
        len(found) == expected, f"{system} search returned {len(found)} runs, expected {expected}"
    )
    want = sorted((m["m1"] for m in matched), reverse=True)[:expected]
    got = [metrics.get("m1") for _, metrics in found]
    check(got == want, f"{system} search is not ordered by metrics.m1 DESC")
    for params, metrics in found:
        check(len(params) == N_KEYS, f"{system} returned a run with {len(params)} params")
        check(len(metrics) == N_KEYS, f"{system} returned a run with {len(metrics)} metrics")
        check(metrics["m0"] > 0.5, f"{system} returned a run with m0 = {metrics['m0']}")


def measure_search(
    search: Callable[[], Sequence[Row]], data: Sequence[Row], system: str, times: int
) -> dict[str, float]:
    """Time ``search`` ``times`` times after one warm-up; verify every answer."""
    with Timer() as first:
        verify(search(), data, system)
    samples = []
    for _ in range(times):
        with Timer() as timer:
            found = search()
        samples.append(timer.seconds * 1000)
        verify(found, data, system)
    return {
        "first_ms": first.seconds * 1000,
        "ms_median": median(samples),
        "ms_p90": percentile(samples, 90),
        "ms_min": min(samples),
        "searches": times,
    }


def creation(runs: int, seconds: float) -> dict[str, float]:
    return {"runs": runs, "create_seconds": seconds, "create_ms_per_run": seconds / runs * 1000}


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("KEEL_HOME", str(args.workdir / ".keel"))
    import keel

    keel.set_tracking_uri(f"sqlite:///{args.workdir / 'keel.db'}")
    with keel.start_run(experiment="warmup", run_name="warmup") as run:
        run.log_params({"p": "x"})
        run.log_metrics({"m": 0.0})

    data = dataset(args)
    with Timer() as create:
        for r, (params, metrics) in enumerate(data):
            with keel.start_run(experiment="bench", run_name=f"run-{r}") as run:
                run.log_params(params)
                run.log_metrics(metrics)

    def search() -> list[Row]:
        found = keel.search_runs(
            experiment="bench", filter=FILTER, order_by=ORDER_BY, max_results=MAX_RESULTS
        )
        return [(dict(r.params), dict(r.metrics)) for r in found]

    figures = creation(args.runs, create.seconds)
    figures.update(measure_search(search, data, "keel", args.searches))
    return {"figures": figures}


def bench_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{args.workdir / 'mlflow.db'}")
    with mlflow.start_run(run_name="warmup"):
        mlflow.log_params({"p": "x"})
        mlflow.log_metrics({"m": 0.0})
    experiment_id = mlflow.set_experiment("bench").experiment_id

    data = dataset(args)
    with Timer() as create:
        for r, (params, metrics) in enumerate(data):
            with mlflow.start_run(run_name=f"run-{r}"):
                mlflow.log_params(params)
                mlflow.log_metrics(metrics)

    client = MlflowClient()

    def search() -> list[Row]:
        found = client.search_runs(
            [experiment_id], filter_string=FILTER, order_by=ORDER_BY, max_results=MAX_RESULTS
        )
        return [(dict(r.data.params), dict(r.data.metrics)) for r in found]

    def search_pandas() -> list[Row]:
        frame = mlflow.search_runs(
            experiment_ids=[experiment_id],
            filter_string=FILTER,
            order_by=ORDER_BY,
            max_results=MAX_RESULTS,
        )
        params = [c for c in frame.columns if c.startswith("params.")]
        metrics = [c for c in frame.columns if c.startswith("metrics.")]
        return [
            (
                {c[len("params.") :]: row[c] for c in params},
                {c[len("metrics.") :]: row[c] for c in metrics},
            )
            for row in frame.to_dict("records")
        ]

    figures = creation(args.runs, create.seconds)
    figures.update(measure_search(search, data, "mlflow", args.searches))
    pandas = measure_search(search_pandas, data, "mlflow (pandas)", args.searches)
    figures.update({f"pandas_{key}": value for key, value in pandas.items()})
    return {"figures": figures}


FLOOR_SCHEMA = """
CREATE TABLE experiments (
    experiment_id VARCHAR(32) PRIMARY KEY,
    name VARCHAR(256) NOT NULL UNIQUE,
    lifecycle_stage VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE runs (
    run_id VARCHAR(32) PRIMARY KEY,
    experiment_id VARCHAR(32) NOT NULL REFERENCES experiments (experiment_id),
    name VARCHAR(256) NOT NULL,
    status VARCHAR(16) NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    lifecycle_stage VARCHAR(16) NOT NULL
);
CREATE INDEX ix_runs_experiment_id_start_time ON runs (experiment_id, start_time);
CREATE TABLE params (
    run_id VARCHAR(32) NOT NULL REFERENCES runs (run_id),
    key VARCHAR(250) NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE metrics (
    run_id VARCHAR(32) NOT NULL REFERENCES runs (run_id),
    key VARCHAR(250) NOT NULL,
    value FLOAT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    is_nan BOOLEAN NOT NULL
);
CREATE INDEX ix_metrics_run_id_key_step ON metrics (run_id, key, step);
CREATE TABLE latest_metrics (
    run_id VARCHAR(32) NOT NULL REFERENCES runs (run_id),
    key VARCHAR(250) NOT NULL,
    value FLOAT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    is_nan BOOLEAN NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX ix_latest_metrics_key_value ON latest_metrics (key, value);
"""

FLOOR_MATCH = """
SELECT r.run_id FROM runs AS r
JOIN latest_metrics AS f ON f.run_id = r.run_id AND f.key = 'm0'
LEFT JOIN latest_metrics AS o ON o.run_id = r.run_id AND o.key = 'm1'
WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' AND f.is_nan = 0 AND f.value > 0.5
ORDER BY o.value IS NULL, o.value DESC, r.start_time DESC, r.run_id
LIMIT ?
"""


def floor_search(con: sqlite3.Connection, experiment: str) -> list[Row]:
    """The search as hand-written SQL: matched ids in order, then their params and metrics."""
    (experiment_id,) = con.execute(
        "SELECT experiment_id FROM experiments WHERE name = ?", (experiment,)
    ).fetchone()
    ids = [row[0] for row in con.execute(FLOOR_MATCH, (experiment_id, MAX_RESULTS))]
    found: dict[str, Row] = {run_id: ({}, {}) for run_id in ids}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        for run_id, key, value in con.execute(
            f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", chunk
        ):
            found[run_id][0][key] = value
        for run_id, key, value, is_nan in con.execute(
            f"SELECT run_id, key, value, is_nan FROM latest_metrics WHERE run_id IN ({marks})",
            chunk,
        ):
            found[run_id][1][key] = float("nan") if is_nan else value
    return list(found.values())


def bench_floor(args: argparse.Namespace) -> dict[str, Any]:
    con = sqlite3.connect(args.workdir / "floor.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.executescript(FLOOR_SCHEMA)
    experiment_id = os.urandom(16).hex()
    con.execute(
        "INSERT INTO experiments VALUES (?, 'bench', 'active', ?)",
        (experiment_id, int(time.time() * 1000)),
    )

    data = dataset(args)
    with Timer() as create:
        for r, (params, metrics) in enumerate(data):
            run_id = os.urandom(16).hex()
            now = int(time.time() * 1000)
            points = [(run_id, key, value, now, 0, 0) for key, value in metrics.items()]
            con.execute("BEGIN")
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, 'finished', ?, ?, 'active')",
                (run_id, experiment_id, f"run-{r}", now, now),
            )
            con.executemany(
                "INSERT INTO params VALUES (?, ?, ?)", [(run_id, k, v) for k, v in params.items()]
            )
            con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", points)
            con.executemany("INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?)", points)
            con.execute("COMMIT")

    figures = creation(args.runs, create.seconds)
    figures.update(measure_search(lambda: floor_search(con, "bench"), data, "floor", args.searches))
    con.close()
    return {"figures": figures}


def run(args: argparse.Namespace) -> dict[str, Any]:
    return {"keel": bench_keel, "mlflow": bench_mlflow, "floor": bench_floor}[args.system](args)


if __name__ == "__main__":
    arguments = parse_args(__doc__.splitlines()[0], SYSTEMS, {"runs": 1_000, "searches": 30})
    packages = {"keel": ("keel-mlops", "sqlalchemy"), "mlflow": ("mlflow", "sqlalchemy")}
    main("b", arguments, run, packages.get(arguments.system, ()))
