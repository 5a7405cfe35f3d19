"""Figure (c): register N versions of one model, then move an alias across M of them.

Every system first logs one small scikit-learn model in one run (untimed) and registers and
aliases one version of a warm-up model (untimed), then times:

* registering ``--versions`` versions of ``bench-model`` from the same run's model, one
  call per version, and
* moving the alias ``champion`` ``--alias-moves`` times across versions spread over them.

Systems:

* ``keel`` — ``run.log_model``, ``keel.register_model("runs:/<id>/model", …)``,
  ``keel.set_alias``.
* ``mlflow`` — ``mlflow.sklearn.log_model``, ``mlflow.register_model`` (from the logged
  model's own ``models:/m-…`` URI, which MLflow 3 resolves without a search),
  ``MlflowClient.set_registered_model_alias``. When MLflow is too slow for a full run,
  pass fewer ``--versions``; the figure is per version and says what it was measured on.
* ``floor`` — raw ``sqlite3`` on tables shaped like Keel's registry: one committed
  transaction per version (bump the model's last version, insert the version row) and per
  alias move (read the old version, upsert the alias, append a history row). It does none
  of the checks a registry makes (that the run and its model artifact exist, their digest).

``workload_seconds`` is the time for the full workload (``--target-versions`` versions and
``--target-moves`` moves) computed from the per-call figures, so systems measured on
different sizes compare on the same workload. Counts are checked in the database afterwards.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from _bench import Timer, check, main, parse_args

SYSTEMS = ("keel", "mlflow", "floor")
MODEL = "bench-model"
ALIAS = "champion"


def small_model() -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return LogisticRegression(max_iter=200).fit(x, y), x[:5]


def alias_targets(versions: int, moves: int) -> list[int]:
    """Versions the alias moves to: ``moves`` of them spread over 1..versions."""
    return [1 + (k * versions) // moves for k in range(moves)]


def scalar(db: Path, sql: str, *params: object) -> Any:
    con = sqlite3.connect(db)
    try:
        row = con.execute(sql, params).fetchone()
        return None if row is None else row[0]
    finally:
        con.close()


def figures(args: argparse.Namespace, register_s: float, alias_s: float) -> dict[str, Any]:
    moves = len(alias_targets(args.versions, args.alias_moves))
    per_version = register_s / args.versions
    per_move = alias_s / moves
    return {
        "versions": args.versions,
        "register_seconds": register_s,
        "versions_per_s": args.versions / register_s,
        "ms_per_version": per_version * 1000,
        "alias_moves": moves,
        "alias_seconds": alias_s,
        "moves_per_s": moves / alias_s,
        "ms_per_move": per_move * 1000,
        "target_versions": args.target_versions,
        "target_moves": args.target_moves,
        "workload_seconds": per_version * args.target_versions + per_move * args.target_moves,
    }


def run_id_of(run: Any) -> str:
    """Keel's run handle id (``run.run_id``; ``run.info.run_id`` if shaped like MLflow's)."""
    run_id = getattr(run, "run_id", None)
    if run_id is None:
        run_id = run.info.run_id
    return str(run_id)


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    os.environ.setdefault("KEEL_HOME", str(args.workdir / ".keel"))
    import keel

    db = args.workdir / "keel.db"
    keel.set_tracking_uri(f"sqlite:///{db}")
    model, example = small_model()
    with keel.start_run(experiment="bench", run_name="model") as run:
        run.log_model(model, "model", input_example=example)
    source = f"runs:/{run_id_of(run)}/model"
    warm = keel.register_model(source, "warmup-model")
    keel.set_alias("warmup-model", ALIAS, warm.version)

    with Timer() as register:
        versions = [keel.register_model(source, MODEL).version for _ in range(args.versions)]
    check(
        [int(v) for v in versions] == list(range(1, args.versions + 1)),
        "keel did not number the versions 1..N",
    )
    targets = alias_targets(args.versions, args.alias_moves)
    with Timer() as alias:
        for version in targets:
            keel.set_alias(MODEL, ALIAS, version)

    stored = scalar(db, "SELECT count(*) FROM model_versions WHERE name = ?", MODEL)
    check(stored == args.versions, f"keel stored {stored} versions, expected {args.versions}")
    final = scalar(
        db, "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", MODEL, ALIAS
    )
    check(final == targets[-1], f"keel alias points at {final}, expected {targets[-1]}")
    return {"figures": figures(args, register.seconds, alias.seconds)}


def bench_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{args.workdir / 'mlflow.db'}")
    mlflow.set_experiment("bench")
    model, example = small_model()
    with mlflow.start_run(run_name="model") as run:
        # Pinned requirements: inferring them starts a subprocess, and it is untimed anyway.
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=example, pip_requirements=["scikit-learn"]
        )
    # MLflow 3 logs a model as a LoggedModel; "runs:/<id>/model" still resolves, but only
    # after a search for it (and a warning) on every call. Its own URI is the fair one.
    source = info.model_uri or f"runs:/{run.info.run_id}/model"
    client = MlflowClient()
    warm = mlflow.register_model(source, "warmup-model")
    client.set_registered_model_alias("warmup-model", ALIAS, warm.version)

    with Timer() as register:
        versions = [mlflow.register_model(source, MODEL).version for _ in range(args.versions)]
    check(
        [int(v) for v in versions] == list(range(1, args.versions + 1)),
        "mlflow did not number the versions 1..N",
    )
    targets = alias_targets(args.versions, args.alias_moves)
    with Timer() as alias:
        for version in targets:
            client.set_registered_model_alias(MODEL, ALIAS, str(version))

    stored = len(client.search_model_versions(f"name = '{MODEL}'", max_results=100_000))
    check(stored == args.versions, f"mlflow stored {stored} versions, expected {args.versions}")
    final = int(client.get_model_version_by_alias(MODEL, ALIAS).version)
    check(final == targets[-1], f"mlflow alias points at {final}, expected {targets[-1]}")
    return {"figures": figures(args, register.seconds, alias.seconds)}


FLOOR_SCHEMA = """
CREATE TABLE registered_models (
    name VARCHAR(256) PRIMARY KEY,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_version INTEGER NOT NULL
);
CREATE TABLE model_versions (
    name VARCHAR(256) NOT NULL REFERENCES registered_models (name),
    version INTEGER NOT NULL,
    run_id VARCHAR(32),
    source TEXT NOT NULL,
    artifact_digest VARCHAR(64) NOT NULL,
    flavor VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by VARCHAR(256) NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX ix_model_versions_run_id ON model_versions (run_id);
CREATE TABLE model_aliases (
    name VARCHAR(256) NOT NULL,
    alias VARCHAR(256) NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
);
CREATE TABLE model_alias_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(256) NOT NULL,
    alias VARCHAR(256) NOT NULL,
    version INTEGER,
    previous_version INTEGER,
    changed_at BIGINT NOT NULL,
    changed_by VARCHAR(256) NOT NULL
);
CREATE INDEX ix_model_alias_history_name_alias ON model_alias_history (name, alias);
"""


def floor_register(con: sqlite3.Connection, run_id: str, digest: str) -> int:
    now = int(time.time() * 1000)
    con.execute("BEGIN IMMEDIATE")
    (version,) = con.execute(
        "UPDATE registered_models SET last_version = last_version + 1, updated_at = ? "
        "WHERE name = ? RETURNING last_version",
        (now, MODEL),
    ).fetchone()
    con.execute(
        "INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, 'sklearn', 'ready', ?, ?, 'bench')",
        (MODEL, version, run_id, f"runs:/{run_id}/model", digest, now, now),
    )
    con.execute("COMMIT")
    return int(version)


def floor_set_alias(con: sqlite3.Connection, version: int) -> None:
    now = int(time.time() * 1000)
    con.execute("BEGIN IMMEDIATE")
    row = con.execute(
        "SELECT version FROM model_aliases WHERE name = ? AND alias = ?", (MODEL, ALIAS)
    ).fetchone()
    con.execute(
        "INSERT INTO model_aliases VALUES (?, ?, ?) "
        "ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
        (MODEL, ALIAS, version),
    )
    con.execute(
        "INSERT INTO model_alias_history (name, alias, version, previous_version, changed_at,"
        " changed_by) VALUES (?, ?, ?, ?, ?, 'bench')",
        (MODEL, ALIAS, version, None if row is None else row[0], now),
    )
    con.execute("COMMIT")


def bench_floor(args: argparse.Namespace) -> dict[str, Any]:
    db = args.workdir / "floor.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA foreign_keys=ON")
    con.executescript(FLOOR_SCHEMA)
    now = int(time.time() * 1000)
    con.execute("INSERT INTO registered_models VALUES (?, NULL, ?, ?, 0)", (MODEL, now, now))
    run_id, digest = os.urandom(16).hex(), os.urandom(32).hex()

    with Timer() as register:
        versions = [floor_register(con, run_id, digest) for _ in range(args.versions)]
    check(versions == list(range(1, args.versions + 1)), "floor did not number versions 1..N")
    targets = alias_targets(args.versions, args.alias_moves)
    with Timer() as alias:
        for version in targets:
            floor_set_alias(con, version)
    con.close()

    stored = scalar(db, "SELECT count(*) FROM model_versions WHERE name = ?", MODEL)
    check(stored == args.versions, f"floor stored {stored} versions, expected {args.versions}")
    final = scalar(db, "SELECT version FROM model_aliases WHERE alias = ?", ALIAS)
    check(final == targets[-1], f"floor alias points at {final}, expected {targets[-1]}")
    return {"figures": figures(args, register.seconds, alias.seconds)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    check(args.alias_moves <= args.versions, "--alias-moves cannot exceed --versions")
    return {"keel": bench_keel, "mlflow": bench_mlflow, "floor": bench_floor}[args.system](args)


if __name__ == "__main__":
    arguments = parse_args(
        __doc__.splitlines()[0],
        SYSTEMS,
        {"versions": 1_000, "alias_moves": 100, "target_versions": 1_000, "target_moves": 100},
    )
    packages = {
        "keel": ("keel-mlops", "sqlalchemy", "scikit-learn"),
        "mlflow": ("mlflow", "sqlalchemy", "scikit-learn"),
    }
    main("c", arguments, run, packages.get(arguments.system, ()))
