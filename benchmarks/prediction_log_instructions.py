"""Prediction-log cost in instructions: ``keel serve`` under callgrind, log on vs off.

Throughput ratios on a shared VM scatter by 5-10 % from one pair of runs to the next
(``prediction_log.py``); an instruction count does not. For each cell of (k) (OIP and
``/invocations``, 1 and 100 rows) each side runs ``keel serve`` under ``valgrind
--tool=callgrind --instr-atstart=no``: 300 warm-up requests go uncounted, then counting is
switched on (``callgrind_control -i on``) and ``n`` requests are sent over 8 keep-alive
connections; the server is stopped (its shutdown flushes the log) and the count written
at its exit is read. Each side runs twice, with ``n`` and ``3n`` requests:
``(count(3n) - count(n)) / 2n`` is the marginal cost of one request, without the start,
the shutdown or the flush of the warm-up's rows. It includes the writer thread's flushes
(the flush interval is an hour, so only the 100,000-row bound and the shutdown flush),
but not the kernel's work (fsync, page faults). ``off / on`` is the throughput ratio a
server whose CPU is the bottleneck would see if every instruction cost the same.

    .venv/bin/python benchmarks/prediction_log_instructions.py --system keel --requests 500

About 10 minutes on a 2-core machine (the two sides run at once). Needs valgrind.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _bench import check, main, parse_args
from _servers import HOST, Server, clean_env, free_port
from prediction_log import ROUTES, ROWS, registered

SYSTEMS = ("keel",)
CONNECTIONS = 8
WARM_UP = 300
START_TIMEOUT_S = 600  # under valgrind, keel serve takes minutes to import and load


def _send(port: int, path: str, body: bytes, count: int) -> None:
    """``count`` POSTs of ``body`` on one keep-alive connection; fails on any non-200."""
    conn = http.client.HTTPConnection(HOST, port, timeout=START_TIMEOUT_S)
    try:
        for _ in range(count):
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            answer = conn.getresponse()
            answer.read()
            check(answer.status == 200, f"{path} answered {answer.status}")
    finally:
        conn.close()


def _count(args: argparse.Namespace, home: Path, uri: str, cell: tuple[str, int], log: bool,
           requests: int) -> int:  # fmt: skip
    """Instructions callgrind counted in a server from the warm-up's end to its exit."""
    route, rows = cell
    side = "on" if log else "off"
    out = args.workdir / f"callgrind-{route}{rows}-{side}-{requests}.out"
    out.unlink(missing_ok=True)
    port = free_port()
    valgrind = shutil.which("valgrind")
    check(valgrind is not None, "valgrind is not installed (apt-get install valgrind)")
    keel = Path(sys.executable).with_name("keel")
    server = Server(
        f"keel serve (log {side}) under callgrind",
        [valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, keel, "serve", uri, "--host", HOST, "--port", str(port),
         "--log-predictions" if log else "--no-log-predictions"],
        port=port,
        env=clean_env(KEEL_HOME=str(home), KEEL_PREDICTION_LOG_FLUSH_INTERVAL="3600"),
        log=args.workdir / f"valgrind-{route}{rows}-{side}.log",
        cwd=args.workdir,
        health_path="/v2/health/ready",
        startup_timeout=START_TIMEOUT_S,
    )  # fmt: skip
    body = (args.workdir / f"{route}-{rows}.json").read_bytes()
    with server:
        _send(port, ROUTES[route], body, WARM_UP)
        # the launcher exec'd valgrind: its pid is the one callgrind_control addresses
        pid = str(server._proc.pid)  # type: ignore[union-attr]
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
        share = requests // CONNECTIONS
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            for done in [pool.submit(_send, port, ROUTES[route], body, share)
                         for _ in range(CONNECTIONS)]:  # fmt: skip
                done.result()
        server.stop(grace=START_TIMEOUT_S)  # SIGTERM: the log's flush, then callgrind's dump
    totals = [line for line in out.read_text().splitlines() if line.startswith("totals:")]
    check(len(totals) == 1, f"no totals line in {out}")
    return int(totals[0].split()[1])


def _marginal(args: argparse.Namespace, home: Path, uri: str, cell: tuple[str, int], log: bool,
              sizes: tuple[int, int]) -> float:  # fmt: skip
    """Instructions one more request costs a server: the two runs' counts differenced."""
    first, second = (_count(args, home, uri, cell, log, n) for n in sizes)
    return (second - first) / (sizes[1] - sizes[0])


def run(args: argparse.Namespace) -> dict[str, Any]:
    home, uri, _, _ = registered(args.workdir)
    figures: dict[str, Any] = {}
    small = args.requests - args.requests % CONNECTIONS
    check(small > 0, f"--requests must be at least {CONNECTIONS} (one per connection)")
    sizes = (small, 3 * small)
    for cell in ((route, rows) for route in ROUTES for rows in ROWS):
        with ThreadPoolExecutor(2) as pool:  # the two sides at once: one core each
            sides = [
                pool.submit(_marginal, args, home, uri, cell, log, sizes) for log in (False, True)
            ]
            per_request = {"off": sides[0].result(), "on": sides[1].result()}
        key = f"{cell[0]}_r{cell[1]}_c{CONNECTIONS}"
        figures[f"{key}_off_instructions"] = per_request["off"]
        figures[f"{key}_on_instructions"] = per_request["on"]
        figures[f"{key}_instruction_ratio"] = per_request["off"] / per_request["on"]
        print(f"{key}: off {per_request['off']:,.0f}, on {per_request['on']:,.0f} "
              f"instructions/request", file=sys.stderr)  # fmt: skip
    figures["min_instruction_ratio"] = min(
        v for k, v in figures.items() if k.endswith("_instruction_ratio")
    )
    figures.update(requests=sizes, connections=CONNECTIONS, warm_up=WARM_UP)
    return {"figures": figures}


if __name__ == "__main__":
    main(
        "prediction_log_instructions",
        parse_args(
            "instructions per keel serve request with the prediction log on vs off",
            SYSTEMS,
            {"requests": 500},
        ),
        run,
        packages=("scikit-learn", "pyarrow"),
    )
