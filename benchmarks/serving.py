"""Figure (g): serve one scikit-learn model over HTTP on 127.0.0.1, under a bounded load.

The model: ``make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))`` fitted on
scikit-learn's breast_cancer data (569 rows, 30 float columns, as a numpy array), logged
with a 5-row DataFrame input example (so its signature names the 30 columns). Each job
fits the same model (same data, deterministic solver) in its own interpreter:

* ``keel`` — ``run.log_model`` + ``keel.register_model``, then ``keel serve models:/…``
  (one worker; adaptive batching at its defaults, 128 rows / 1 ms), loaded with MLflow's
  ``POST /invocations`` ``dataframe_split`` JSON, and with the Open Inference Protocol's
  ``POST /v2/models/{name}/infer`` JSON (one FP64 tensor ``[rows, 30]``, asking for the
  ``predict`` output only, as ``/invocations`` answers) as an extra row.
  Also a trivial ``GET /v2/health/live`` at the highest concurrency, to show the load
  generator is not the bottleneck.
* ``mlflow`` — ``mlflow.sklearn.log_model`` in MLflow's own virtualenv, then
  ``mlflow models serve -m models:/m-… --env-manager local`` with its defaults (uvicorn,
  one worker), loaded with the same ``dataframe_split`` bodies.
* ``floor`` — the model's own ``predict`` in-process (Keel's interpreter): 1 and 100 rows,
  on a numpy array and on a DataFrame with the column names; the median of many calls.
* ``path`` (``--system path`` by hand, not in the runner's table) — ``keel serve``'s ASGI
  app called in-process with the same bodies (no sockets, no uvicorn), interleaved with
  ``predict`` on the array: what the app itself adds to the floor.

Load: ``wrk`` (Debian's package; ``apt-get install wrk``), one thread, ``C`` keep-alive
connections for ``--duration`` seconds per cell, for C in 1, 8, 32 and 1-row and 100-row
bodies; wrk's Lua ``done`` hook prints requests, latency percentiles (p50, p99) and errors
(socket errors plus non-2xx answers). Before any load, each server's answer to every body
is checked against the in-process predictions; a cell with zero requests fails the job.
Servers are started and always stopped (process group) by ``_servers.Server``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from _bench import check, main, parse_args
from _servers import HOST, Server, clean_env, free_port

SYSTEMS = ("keel", "mlflow", "floor", "path")
CONCURRENCY = (1, 8, 32)
ROWS = (1, 100)
MODEL_NAME = "bench-serving"

_WRK_SCRIPT = """
local f = io.open(os.getenv("BENCH_BODY") or "", "rb")
if f then
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %f, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write,
    e.status, e.timeout))
end
"""


def model_and_data() -> tuple[Any, Any, list[str]]:
    """The fitted pipeline, the data as a numpy array, and the 30 column names."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    X, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    return model, X, [str(n) for n in data.feature_names]


def split_body(X: Any, names: list[str], rows: int) -> bytes:
    return json.dumps({"dataframe_split": {"columns": names, "data": X[:rows].tolist()}}).encode()


def oip_body(X: Any, rows: int) -> bytes:
    data = X[:rows]
    tensor = {
        "name": "input-0",
        "datatype": "FP64",
        "shape": list(data.shape),
        "data": data.ravel().tolist(),
    }
    # only "predict", as /invocations answers (no outputs would also run predict_proba)
    return json.dumps({"inputs": [tensor], "outputs": [{"name": "predict"}]}).encode()


def post(url: str, body: bytes) -> Any:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        check(response.status == 200, f"{url} answered {response.status}")
        return json.loads(response.read())


def wrk(url: str, body: Path | None, connections: int, seconds: int, workdir: Path) -> dict:
    """One wrk cell: ``connections`` keep-alive connections for ``seconds`` seconds."""
    exe = shutil.which("wrk")
    check(exe is not None, "wrk is not installed (apt-get install -y wrk)")
    script = workdir / "bench.lua"
    if not script.exists():
        script.write_text(_WRK_SCRIPT, encoding="utf-8")
    env = {**os.environ, "BENCH_BODY": str(body) if body else ""}
    command = [
        str(exe),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False
    )
    print(done.stdout, done.stderr, file=sys.stderr)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    check(line is not None, f"wrk printed no result (exit {done.returncode}): {done.stderr}")
    raw = json.loads(line.split(" ", 1)[1])
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    check(raw["requests"] > 0, f"wrk completed no request on {url} at c={connections}")
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": errors,
    }


def load_cells(
    server: Server, path: str, bodies: dict[int, Path], prefix: str, args: argparse.Namespace
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for rows, body in bodies.items():
        for c in CONCURRENCY:
            cell = wrk(server.url + path, body, c, args.duration, args.workdir)
            for key, value in cell.items():
                figures[f"{prefix}_r{rows}_c{c}_{key}"] = value
    return figures


def write_bodies(workdir: Path, name: str, make: Any) -> dict[int, Path]:
    out = {}
    for rows in ROWS:
        path = workdir / f"{name}-{rows}.json"
        path.write_bytes(make(rows))
        out[rows] = path
    return out


def check_answers(url: str, bodies: dict[int, Path], expected: Any, key: str) -> None:
    for rows, path in bodies.items():
        answer = post(url, path.read_bytes())
        got = answer["predictions"] if key == "predictions" else answer["outputs"][0]["data"]
        check(
            [int(v) for v in got] == [int(v) for v in expected[:rows]],
            f"{url} answered wrong predictions for {rows} rows",
        )
    for _ in range(200):  # warm-up, untimed
        post(url, bodies[ROWS[0]].read_bytes())


def register_keel(args: argparse.Namespace) -> tuple[str, Any, Any, list[str]]:
    """Log and register the model in a Keel home under the workdir: its URI, model, data."""
    import pandas as pd

    os.environ["KEEL_HOME"] = str(args.workdir / ".keel")
    import keel

    model, X, names = model_and_data()
    with keel.start_run(experiment="bench-serving") as run:
        run.log_model(model, "model", input_example=pd.DataFrame(X[:5], columns=names))
    version = keel.register_model(f"runs:/{run.run_id}/model", MODEL_NAME)
    return f"models:/{MODEL_NAME}/{version.version}", model, X, names


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    home = args.workdir / ".keel"
    uri, model, X, names = register_keel(args)
    expected = model.predict(X)
    port = free_port()
    exe = Path(sys.executable).with_name("keel")
    command = [exe, "serve", uri, "--host", HOST, "--port", str(port)]
    server = Server(
        "keel serve",
        command,
        port=port,
        env=clean_env(KEEL_HOME=str(home), PYTHONUNBUFFERED="1"),
        log=args.workdir / "keel-serve.log",
        cwd=args.workdir,
        health_path="/v2/health/ready",
    )
    split = write_bodies(args.workdir, "split", lambda r: split_body(X, names, r))
    oip = write_bodies(args.workdir, "oip", lambda r: oip_body(X, r))
    infer = f"/v2/models/{MODEL_NAME}/infer"
    with server:
        check_answers(server.url + "/invocations", split, expected, "predictions")
        check_answers(server.url + infer, oip, expected, "outputs")
        figures = load_cells(server, "/invocations", split, "inv", args)
        figures.update(load_cells(server, infer, oip, "oip", args))
        top = CONCURRENCY[-1]
        trivial = wrk(server.url + "/v2/health/live", None, top, args.duration, args.workdir)
        figures.update({f"live_c{top}_{k}": v for k, v in trivial.items()})
    figures.update(
        duration_s=args.duration,
        workers=1,
        batching="max 128 rows, 1 ms",
        server_startup_seconds=server.startup_seconds,
    )
    return {"figures": figures}


def bench_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    import mlflow
    import mlflow.sklearn
    import pandas as pd

    db = args.workdir / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_experiment("bench-serving")
    model, X, names = model_and_data()
    expected = model.predict(X)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=pd.DataFrame(X[:5], columns=names),
            pip_requirements=["scikit-learn"],
        )
    port = free_port()
    exe = Path(sys.executable).with_name("mlflow")
    command = [
        exe,
        "models",
        "serve",
        "-m",
        info.model_uri,
        "--env-manager",
        "local",
        "--host",
        HOST,
        "-p",
        str(port),
    ]
    env = clean_env(
        # it runs ``uvicorn`` by name: its virtualenv's bin first on PATH
        PATH=os.pathsep.join([str(exe.parent), os.environ.get("PATH", "")]),
        MLFLOW_TRACKING_URI=f"sqlite:///{db}",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        GIT_PYTHON_REFRESH="quiet",
        PYTHONUNBUFFERED="1",
    )
    server = Server(
        "mlflow models serve",
        command,
        port=port,
        env=env,
        log=args.workdir / "mlflow-serve.log",
        cwd=args.workdir,
        health_path="/ping",
    )
    split = write_bodies(args.workdir, "split", lambda r: split_body(X, names, r))
    with server:
        check_answers(server.url + "/invocations", split, expected, "predictions")
        figures = load_cells(server, "/invocations", split, "inv", args)
    figures.update(
        duration_s=args.duration, workers=1, server_startup_seconds=server.startup_seconds
    )
    return {"figures": figures}


def bench_floor(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    model, X, names = model_and_data()
    figures: dict[str, Any] = {}
    for rows in ROWS:
        array = X[:rows].copy()
        frame = pd.DataFrame(array, columns=names)
        for kind, data in (("ndarray", array), ("frame", frame)):
            with warnings.catch_warnings():
                # fitted on an array: a named DataFrame warns once per call site
                warnings.simplefilter("ignore")
                for _ in range(200):
                    model.predict(data)
                times = []
                for _ in range(args.calls):
                    start = time.perf_counter()
                    model.predict(data)
                    times.append(time.perf_counter() - start)
            figures[f"predict_{kind}_r{rows}_ms"] = statistics.median(times) * 1000
    figures["calls"] = args.calls
    return {"figures": figures}


async def _asgi_post(app: Any, path: str, body: bytes) -> int:
    """One POST through the ASGI app, as uvicorn would send it; the response status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": (HOST, 1),
        "server": (HOST, 2),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = [0]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status[0] = message["status"]

    await app(scope, receive, send)
    return status[0]


def bench_path(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from keel.serving.rest import create_app
    from keel.serving.service import ModelService

    uri, model, X, names = register_keel(args)
    service = ModelService.from_uri(uri)
    service.load()
    app = create_app(service)
    infer = f"/v2/models/{MODEL_NAME}/infer"

    async def measure() -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for rows in ROWS:
            calls: dict[str, Any] = {
                "predict_ndarray": lambda a=X[:rows].copy(): model.predict(a),
                "app_inv": lambda b=split_body(X, names, rows): _asgi_post(app, "/invocations", b),
                "app_oip": lambda b=oip_body(X, rows): _asgi_post(app, infer, b),
            }
            times: dict[str, list[float]] = {name: [] for name in calls}
            for timed in (False, True):  # a warm-up pass, then interleaved rounds of 10 calls
                for _ in range(args.calls // 10 if timed else 20):
                    for name, call in calls.items():
                        for _ in range(10):
                            start = time.perf_counter()
                            result = call()
                            if name != "predict_ndarray":
                                check(await result == 200, f"{name} answered {result}")
                            if timed:
                                times[name].append(time.perf_counter() - start)
            for name, values in times.items():
                figures[f"{name}_r{rows}_ms"] = statistics.median(values) * 1000
        return figures

    figures = asyncio.run(measure())
    figures["calls"] = args.calls
    return {"figures": figures}


def run(args: argparse.Namespace) -> dict[str, Any]:
    tempfile.tempdir = str(args.workdir)
    systems = {"keel": bench_keel, "mlflow": bench_mlflow, "floor": bench_floor, "path": bench_path}
    return systems[args.system](args)


if __name__ == "__main__":
    arguments = parse_args(__doc__.splitlines()[0], SYSTEMS, {"duration": 5, "calls": 2000})
    main("g", arguments, run, packages=("keel-mlops", "mlflow", "scikit-learn", "uvicorn"))
