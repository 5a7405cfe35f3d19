"""Prediction-log overhead: ``keel serve`` throughput with the log on vs off, side by side.

The model and the bodies are figure (g)'s (``serving.py``: the breast_cancer pipeline, 30
float columns; MLflow ``dataframe_split`` on ``/invocations`` and one OIP FP64 tensor
``[rows, 30]`` asking for ``predict``), registered once. Two ``keel serve`` processes serve
the same version at once, one with ``--no-log-predictions``, one with
``--log-predictions`` (every input recorded: sample rate 1, the default, the costliest
case). For each cell (route x 1 or 100 rows, ``C`` keep-alive connections) wrk loads the
two servers in turn for ``--duration`` seconds each, ``--repeat`` pairs per cell, in
ABBA order (off-on, on-off, ...). A cell's figure is the median over its pairs of the
pair's on/off requests/s ratio (target >= 0.95), with the spread of those ratios: a
pair's two runs are seconds apart, so a change in the machine's speed hits both alike.
That matters on a shared VM: a single-threaded Python loop here ran at 1,150-2,050
iterations per second from one second to the next (2026-12-02), so one 5-s run of a
server could be 20 % off the next, and three runs a side could not resolve 5 %.

Each cell also records wrk's p99 latency of each side (median over the repeats): a
writer that holds the GIL stalls the event loop, which shows there before it shows in
requests/s. And it records the CPU time the server's process group spent (``/proc``), per
request: on a machine that other work shares, throughput moves with the neighbours' load,
CPU per request much less; ``cpu_ratio`` (off/on CPU per request) is the throughput ratio
a CPU-bound server would see.

After the load the "on" server is stopped (its shutdown flushes the log) and its log is
counted back (DuckDB over its segments): every completed request's rows must be there
(none dropped), or the figure is refused.

    .venv/bin/python benchmarks/prediction_log.py --system keel --duration 2 --repeat 12
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

from _bench import check, main, parse_args
from _servers import HOST, Server, clean_env, free_port
from serving import model_and_data, oip_body, post, split_body, wrk

SYSTEMS = ("keel",)
ROWS = (1, 100)
MODEL_NAME = "bench-plog"
DEPLOYMENT = MODEL_NAME  # keel serve logs under the model's name


def _group_cpu_seconds(server: Server) -> float:
    """User + system CPU seconds of every live process in the server's process group."""
    proc = server._proc  # the launcher; the server and its workers share its group
    check(proc is not None, f"{server.name} is not running")
    group, total = proc.pid, 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _server(uri: str, home: Path, workdir: Path, *, log: bool) -> Server:
    port = free_port()
    flag = "--log-predictions" if log else "--no-log-predictions"
    exe = Path(sys.executable).with_name("keel")
    side = "on" if log else "off"
    return Server(
        f"keel serve (log {side})",
        [exe, "serve", uri, "--host", HOST, "--port", str(port), flag],
        port=port,
        env=clean_env(KEEL_HOME=str(home), PYTHONUNBUFFERED="1"),
        log=workdir / f"keel-serve-{side}.log",
        cwd=workdir,
        health_path="/v2/health/ready",
    )


ROUTES = {"oip": f"/v2/models/{MODEL_NAME}/infer", "inv": "/invocations"}


def registered(workdir: Path) -> tuple[Path, str, Any, dict[tuple[str, int], Path]]:
    """Register the model in a Keel home under ``workdir`` and write one body per cell;
    return the home, the model's URI, its predictions on the data, and the bodies' files
    by (route, rows)."""
    import pandas as pd

    home = workdir / ".keel"
    os.environ["KEEL_HOME"] = str(home)
    import keel

    model, X, names = model_and_data()
    with keel.start_run(experiment="bench-prediction-log") as run_:
        run_.log_model(model, "model", input_example=pd.DataFrame(X[:5], columns=names))
    version = keel.register_model(f"runs:/{run_.run_id}/model", MODEL_NAME)
    make = {"oip": lambda r: oip_body(X, r), "inv": lambda r: split_body(X, names, r)}
    bodies: dict[tuple[str, int], Path] = {}
    for route in ROUTES:
        for rows in ROWS:
            path = workdir / f"{route}-{rows}.json"
            path.write_bytes(make[route](rows))
            bodies[(route, rows)] = path
    return home, f"models:/{MODEL_NAME}/{version.version}", model.predict(X), bodies


def _log_folder() -> str:
    """The deployment's prediction log folder in the current Keel home."""
    from keel.monitoring.prediction_store import PREDICTIONS, log_root

    return log_root().folder(PREDICTIONS, DEPLOYMENT)


def _logged_rows() -> tuple[int, bool]:
    """The rows in the deployment's log, and whether every one kept its inputs: counted by
    DuckDB over the segments (a 40-pair run logs ~12M rows of 41 columns, which as one
    frame, ``keel.read_predictions``, outgrew this 24-GiB machine)."""
    import duckdb

    from keel.monitoring.prediction_store import PREDICTIONS, log_root

    files = log_root().files(PREDICTIONS, DEPLOYMENT)
    if not files:
        return 0, False
    count, sampled = duckdb.sql(
        "SELECT count(*), coalesce(bool_and(sampled), false) FROM read_parquet($files)",
        params={"files": files},
    ).fetchall()[0]
    return int(count), bool(sampled)


def run(args: argparse.Namespace) -> dict[str, Any]:
    home, uri, expected, bodies = registered(args.workdir)
    # a workdir used before holds an earlier run's log, whose rows the check would count
    shutil.rmtree(_log_folder(), ignore_errors=True)

    off, on = (_server(uri, home, args.workdir, log=flag) for flag in (False, True))
    rps: dict[tuple[str, int, str], list[float]] = {}
    cpu: dict[tuple[str, int, str], list[float]] = {}
    p99: dict[tuple[str, int, str], list[float]] = {}  # a writer stalling the loop shows here
    sent: dict[str, int] = {}  # completed requests per body on the "on" server, warm-ups too
    pairs: dict[tuple[str, int], list[float]] = {}  # each pair's on/off requests/s
    figures: dict[str, Any] = {}
    with off, on:
        for server, side in ((off, "off"), (on, "on")):
            for (route, rows), path in bodies.items():
                answer = post(server.url + ROUTES[route], path.read_bytes())
                got = answer["predictions"] if route == "inv" else answer["outputs"][0]["data"]
                check(
                    [int(v) for v in got] == [int(v) for v in expected[:rows]],
                    f"{side}: {route} answered wrong predictions for {rows} rows",
                )
                for _ in range(100):  # warm-up, untimed
                    post(server.url + ROUTES[route], path.read_bytes())
                if side == "on":
                    sent[f"{route}-{rows}"] = 101
        for (route, rows), path in bodies.items():
            for pair in range(args.repeat):
                order = ((off, "off"), (on, "on")) if pair % 2 == 0 else ((on, "on"), (off, "off"))
                pair_rps: dict[str, float] = {}
                for server, side in order:
                    url = server.url + ROUTES[route]
                    before = _group_cpu_seconds(server)
                    cell = wrk(url, path, args.connections, args.duration, args.workdir)
                    spent = _group_cpu_seconds(server) - before
                    check(cell["errors"] == 0, f"{side} {route} r{rows}: {cell['errors']} errors")
                    pair_rps[side] = cell["rps"]
                    rps.setdefault((route, rows, side), []).append(cell["rps"])
                    p99.setdefault((route, rows, side), []).append(cell["p99_ms"])
                    per_request = 1000 * spent / cell["requests"]
                    cpu.setdefault((route, rows, side), []).append(per_request)
                    if side == "on":
                        sent[f"{route}-{rows}"] += cell["requests"]
                pairs.setdefault((route, rows), []).append(pair_rps["on"] / pair_rps["off"])
    for (route, rows, side), values in sorted(rps.items()):
        figures[f"{route}_r{rows}_c{args.connections}_{side}_rps"] = statistics.median(values)
    for (route, rows, side), values in sorted(cpu.items()):
        figures[f"{route}_r{rows}_c{args.connections}_{side}_cpu_ms"] = statistics.median(values)
    for (route, rows, side), values in sorted(p99.items()):
        figures[f"{route}_r{rows}_c{args.connections}_{side}_p99_ms"] = statistics.median(values)
    for route in ROUTES:
        for rows in ROWS:
            key = f"{route}_r{rows}_c{args.connections}"
            ratios = sorted(pairs[(route, rows)])
            figures[f"{key}_ratio"] = statistics.median(ratios)
            # the middle half of the pairs' ratios: how far one pair could be off
            figures[f"{key}_ratio_q1"] = ratios[(len(ratios) - 1) // 4]
            figures[f"{key}_ratio_q3"] = ratios[len(ratios) - 1 - (len(ratios) - 1) // 4]
            off_cpu, on_cpu = figures[f"{key}_off_cpu_ms"], figures[f"{key}_on_cpu_ms"]
            figures[f"{key}_cpu_ratio"] = off_cpu / on_cpu if on_cpu > 0 else 0.0
    cells = [f"{route}_r{rows}_c{args.connections}" for route in ROUTES for rows in ROWS]
    figures["min_ratio"] = min(figures[f"{key}_ratio"] for key in cells)
    figures["min_cpu_ratio"] = min(figures[f"{key}_cpu_ratio"] for key in cells)
    logged, sampled = _logged_rows()
    expected_rows = sum(n * int(body.rsplit("-", 1)[1]) for body, n in sent.items())
    # wrk counts the requests it completed; a few it had in flight at its end may also have
    # been answered (and logged): at least as many rows as counted, and no drops
    check(
        logged >= expected_rows,
        f"the log holds {logged} rows; the 'on' server answered at least {expected_rows}",
    )
    check(sampled, "every request's inputs were to be recorded")
    figures.update(
        logged_rows=logged,
        answered_rows=expected_rows,
        duration_s=args.duration,
        repeat=args.repeat,
        connections=args.connections,
        target_ratio=0.95,
        loadavg_1m=os.getloadavg()[0],
    )
    return {"figures": figures}


if __name__ == "__main__":
    main(
        "prediction_log",
        parse_args(
            "keel serve throughput with the prediction log on vs off",
            SYSTEMS,
            {"duration": 2, "repeat": 12, "connections": 8},
        ),
        run,
        packages=("scikit-learn", "pyarrow", "duckdb"),
    )
