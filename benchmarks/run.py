"""Run Keel's benchmarks side by side with MLflow and a raw-SQLite floor; print one table.

    .venv/bin/python benchmarks/run.py [--only a,b,c,d,e,f,g,h,i,j,k] [--quick] [--repeat N]
                               [--systems keel,mlflow,evidently,prefect,floor] [--reinstall]

MLflow, Evidently and Prefect (the latest of each) are installed into
``benchmarks/.venvs/<peer>`` on first use, never into Keel's virtualenv. Every
(benchmark, system) pair runs as its own subprocess, in its own fresh temporary folder,
under a timeout, and prints one JSON line; the runner collects the lines, prints a Rich
table and writes ``benchmarks/results/latest.json`` (with per-run logs under
``benchmarks/results/logs/``). See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from _report import evaluate, render

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".venvs" / "mlflow"
MLFLOW_PYTHON = MLFLOW_VENV / "bin" / "python"
EVIDENTLY_VENV = HERE / ".venvs" / "evidently"
EVIDENTLY_PYTHON = EVIDENTLY_VENV / "bin" / "python"
# Evidently 0.7.23 (the latest, 2026-12) imports a helper pandas 3 removed; pandas<3 is the
# newest it runs on, so its venv gets that pin beside it.
EVIDENTLY_PACKAGES = ("evidently", "pandas<3")
PREFECT_VENV = HERE / ".venvs" / "prefect"
PREFECT_PYTHON = PREFECT_VENV / "bin" / "python"
RESULTS = HERE / "results"
INSTALL_TIMEOUT = 1800.0
BENCHMARKS = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k")
SIDES = ("keel", "mlflow", "evidently", "prefect", "floor")

# Piped output (make bench | tee) would otherwise be cut to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 150)


@dataclass(frozen=True)
class Job:
    """One benchmark script run for one system."""

    benchmark: str
    system: str
    script: str
    side: str  # "keel", "mlflow", "evidently" or "floor": picks the interpreter and environment
    args: tuple[str, ...]


def sizes(quick: bool, args: argparse.Namespace) -> dict[str, dict[str, int]]:
    """Problem sizes per benchmark; ``--quick`` is a smoke run, not a figure to quote."""
    if quick:
        base = {
            "a": {"points": 10_000, "calls": 200},
            "b": {"runs": 100, "searches": 5},
            "c": {"versions": 50, "alias_moves": 10},
            "d": {"points": 10_000, "calls": 100},
            "e": {"runs": 500, "searches": 5},
            "f": {"runs": 500, "keys": 2_000, "keys_per_run": 20, "requests": 5},
            "g": {"duration": 1, "calls": 200},
            "h": {"rows": 20_000},
            "i": {"rows": 5_000},
            "j": {"chain": 20, "fan": 100},
            "k": {"duration": 1, "repeat": 1},
        }
    else:
        base = {
            "a": {"points": 100_000, "calls": 2_000},
            "b": {"runs": 1_000, "searches": 30},
            "c": {"versions": 1_000, "alias_moves": 100},
            "d": {"points": 100_000, "calls": 1_000},
            "e": {"runs": 10_000, "searches": 30},
            "f": {"runs": 10_000, "keys": 2_000, "keys_per_run": 20, "requests": 30},
            "g": {"duration": 5, "calls": 2_000},
            "h": {"rows": 1_000_000},
            "i": {"rows": 100_000},
            "j": {"chain": 100, "fan": 1_000},
            "k": {"duration": 2, "repeat": 12},
        }
    if args.mlflow_calls:
        base["a"]["calls"] = args.mlflow_calls
    return base


def plan(args: argparse.Namespace) -> list[Job]:
    """The jobs of one repetition, interleaved by benchmark so each is measured side by side."""
    size = sizes(args.quick, args)

    def flags(values: dict[str, int]) -> tuple[str, ...]:
        return tuple(
            part
            for key, value in values.items()
            for part in (f"--{key.replace('_', '-')}", str(value))
        )

    mlflow_c = dict(size["c"])
    if args.mlflow_versions:
        mlflow_c["versions"] = args.mlflow_versions
        mlflow_c["alias_moves"] = min(mlflow_c["alias_moves"], args.mlflow_versions)
    targets = {"target_versions": 1_000, "target_moves": 100}
    jobs = [
        Job("a", "keel", "metrics_logging.py", "keel", flags(size["a"])),
        Job("a", "mlflow_log_metric", "metrics_logging.py", "mlflow", flags(size["a"])),
        Job("a", "mlflow_log_batch", "metrics_logging.py", "mlflow", flags(size["a"])),
        Job("a", "floor", "metrics_logging.py", "floor", flags(size["a"])),
        Job("a", "floor_loop", "metrics_logging.py", "floor", flags(size["a"])),
        Job("b", "keel", "run_search.py", "keel", flags(size["b"])),
        Job("b", "mlflow", "run_search.py", "mlflow", flags(size["b"])),
        Job("b", "floor", "run_search.py", "floor", flags(size["b"])),
        Job("c", "keel", "model_registry.py", "keel", flags({**size["c"], **targets})),
        Job("c", "mlflow", "model_registry.py", "mlflow", flags({**mlflow_c, **targets})),
        Job("c", "floor", "model_registry.py", "floor", flags({**size["c"], **targets})),
        # Through a server on 127.0.0.1 (each job starts and stops its own).
        Job("d", "keel", "server_logging.py", "keel", flags(size["d"])),
        Job("d", "keel_rest", "server_logging.py", "keel", flags(size["d"])),
        Job("d", "mlflow_log_batch", "server_logging.py", "mlflow", flags(size["d"])),
        Job("d", "mlflow_log_metric", "server_logging.py", "mlflow", flags(size["d"])),
        Job("e", "keel", "server_search.py", "keel", flags(size["e"])),
        Job("e", "mlflow", "server_search.py", "mlflow", flags(size["e"])),
        Job("f", "keel", "runs_page.py", "keel", flags(size["f"])),
        # Model serving under load (wrk), each job starting and stopping its own server.
        Job("g", "keel", "serving.py", "keel", flags(size["g"])),
        Job("g", "mlflow", "serving.py", "mlflow", flags(size["g"])),
        Job("g", "floor", "serving.py", "floor", flags(size["g"])),
        # Data drift of 25 columns, Keel vs Evidently's DataDriftPreset vs scipy calls.
        *(
            Job(b, system, "drift.py", side, flags(size[b]))
            for b in ("h", "i")
            for system, side in (
                ("keel", "keel"),
                ("evidently", "evidently"),
                ("floor", "floor"),
                ("floor_numpy", "floor"),
            )
        ),
        # Pipeline overhead on the same flows: Keel's local executor vs Prefect's.
        Job("j", "keel", "pipelines.py", "keel", flags(size["j"])),
        Job("j", "prefect", "pipelines.py", "prefect", flags(size["j"])),
        # keel serve with the prediction log on vs off (two servers, wrk cells alternated).
        Job("k", "keel", "prediction_log.py", "keel", flags(size["k"])),
    ]
    return [j for j in jobs if j.benchmark in args.only and j.side in args.systems]


def interpreter(side: str) -> Path:
    peers = {"mlflow": MLFLOW_PYTHON, "evidently": EVIDENTLY_PYTHON, "prefect": PREFECT_PYTHON}
    return peers.get(side, Path(sys.executable))


def job_env(side: str, workdir: Path) -> dict[str, str]:
    """A clean environment: no inherited KEEL_*/MLFLOW_* settings, nothing reaching out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "MLFLOW_"))}
    env.update(PYTHONUNBUFFERED="1", DO_NOT_TRACK="1", GIT_PYTHON_REFRESH="quiet")
    if side == "keel":
        env.update(KEEL_HOME=str(workdir / ".keel"))
    if side == "mlflow":
        env.update(
            MLFLOW_TRACKING_URI=f"sqlite:///{workdir / 'mlflow.db'}",
            MLFLOW_ENABLE_ASYNC_LOGGING="false",
            MLFLOW_DISABLE_TELEMETRY="true",
            DO_NOT_TRACK="true",
        )
    return env


def run_job(job: Job, timeout: float, log: Path, seed: int) -> dict[str, Any]:
    """Run one job in a fresh folder; return its JSON result (or an error result)."""
    base = {"benchmark": job.benchmark, "system": job.system}
    python = interpreter(job.side)
    if not python.exists():
        return {**base, "ok": False, "error": f"interpreter missing: {python}"}
    with tempfile.TemporaryDirectory(prefix=f"keel-bench-{job.benchmark}-") as tmp:
        workdir = Path(tmp)
        command = [
            str(python),
            str(HERE / job.script),
            "--system",
            job.system,
            "--workdir",
            str(workdir),
            "--seed",
            str(seed),
            *job.args,
        ]
        started = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=job_env(job.side, workdir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a timeout can end all of it
        )
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            log.write_text(" ".join(command) + "\n\n" + err, encoding="utf-8")
            return {**base, "ok": False, "error": f"timed out after {timeout:.0f} s"}
        wall = time.perf_counter() - started
    log.write_text(" ".join(command) + "\n\n" + err + "\n--- stdout ---\n" + out, "utf-8")
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {
            **base,
            "ok": False,
            "error": f"no result line (exit {proc.returncode}): {tail}",
        }
    result["benchmark"] = job.benchmark  # one script may serve two figures (drift.py: h, i)
    if proc.returncode != 0 and result.get("ok", False):
        result.update(ok=False, error=f"exit code {proc.returncode}")
    result["wall_seconds"] = wall
    result["command"] = command
    return result


def summarise(results: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (benchmark, system): the median of each figure over repeats; any failure wins."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for result in results:
        grouped.setdefault((result["benchmark"], result["system"]), []).append(result)
    summary = {}
    for key, group in grouped.items():
        failed = [r for r in group if not r.get("ok")]
        if failed:
            summary[key] = {"ok": False, "error": failed[0].get("error"), "repeats": len(group)}
            continue
        names = set().union(*(r["figures"] for r in group))
        figures = {}
        for name in sorted(names):
            values = [r["figures"][name] for r in group if name in r["figures"]]
            # Sizes are the same in every repeat: keep them as given (ints stay ints).
            same = all(v == values[0] for v in values)
            figures[name] = values[0] if same else statistics.median(values)
        summary[key] = {"ok": True, "figures": figures, "repeats": len(group)}
    return summary


def probe(python: Path, packages: tuple[str, ...]) -> dict[str, Any]:
    """Python, SQLite and package versions of an interpreter, without importing Keel."""
    code = (
        "import json, platform, sqlite3\n"
        "from importlib import metadata\n"
        "found = {}\n"
        f"for name in {list(packages)!r}:\n"
        "    try:\n"
        "        found[name] = metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n"
        "        pass\n"
        "print(json.dumps({'python': platform.python_version(), "
        "'sqlite': sqlite3.sqlite_version, 'packages': found}))\n"
    )
    try:
        done = subprocess.run(
            [str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        return json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as exc:
        return {"error": str(exc)}


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "load_average_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                info["memory_kb"] = int(line.split()[1])
                break
    except OSError:
        pass
    return info


def ensure_mlflow(reinstall: bool) -> str | None:
    """Create or refresh MLflow's own virtualenv; return the MLflow version (None: failed)."""
    return ensure_peer("MLflow", MLFLOW_VENV, "mlflow", ("mlflow",), reinstall)


def ensure_evidently(reinstall: bool) -> str | None:
    """Create or refresh Evidently's own virtualenv; return its version (None: failed)."""
    return ensure_peer("Evidently", EVIDENTLY_VENV, "evidently", EVIDENTLY_PACKAGES, reinstall)


def ensure_prefect(reinstall: bool) -> str | None:
    """Create or refresh Prefect's own virtualenv; return its version (None: failed)."""
    return ensure_peer("Prefect", PREFECT_VENV, "prefect", ("prefect",), reinstall)


def ensure_peer(
    label: str, venv: Path, module: str, packages: tuple[str, ...], reinstall: bool
) -> str | None:
    """Create or refresh a peer's virtualenv with ``packages``; return the peer's version."""
    python = venv / "bin" / "python"
    present = (
        python.exists()
        and subprocess.run(
            [str(python), "-c", f"import {module}"],
            capture_output=True,
            timeout=300,
            check=False,
        ).returncode
        == 0
    )
    if not present or reinstall:
        steps = []
        if not python.exists():
            steps.append([sys.executable, "-m", "venv", str(venv)])
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
        steps += [[*pip, "--quiet", "--upgrade", "pip"], [*pip, "--upgrade", *packages]]
        with console.status(f"installing {label} into {venv} (a few minutes)…"):
            for step in steps:
                try:
                    done = subprocess.run(
                        step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
                    )
                except subprocess.TimeoutExpired:
                    console.print(f"[red]{label} install timed out:[/] {' '.join(step)}")
                    return None
                if done.returncode != 0:
                    tail = "\n".join(done.stderr.strip().splitlines()[-10:])
                    console.print(f"[red]{label} install failed:[/] {' '.join(step)}\n{tail}")
                    return None
    version = probe(python, (module,)).get("packages", {}).get(module)
    console.print(f"{label} {version} in {venv}")
    return version


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="benchmarks to run, e.g. a,c or d,e,f"
    )
    parser.add_argument(
        "--systems",
        default=",".join(SIDES),
        help="sides to run: " + ", ".join(SIDES),
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each job; medians shown")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per job")
    parser.add_argument("--reinstall", action="store_true", help="upgrade the peers' venvs first")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--mlflow-calls", type=int, default=0, help="log_metric calls (a)")
    parser.add_argument(
        "--mlflow-versions", type=int, default=0, help="versions MLflow registers in (c)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, too")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    args.only = {b.strip() for b in args.only.split(",") if b.strip()}
    args.systems = {s.strip() for s in args.systems.split(",") if s.strip()}
    if not args.only <= set(BENCHMARKS):
        parser.error(f"--only takes a comma-separated subset of {','.join(BENCHMARKS)}")
    if not args.systems <= set(SIDES):
        parser.error(f"--systems takes a comma-separated subset of {','.join(SIDES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.timeout is None:
        args.timeout = 300.0 if args.quick else 1200.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load_start > (os.cpu_count() or 1) / 2:
        console.print(
            f"[yellow]load average {load_start:.1f} on {os.cpu_count()} CPUs: other work is "
            "running, so figures will be slower and noisier than on a quiet machine[/]"
        )
    jobs = plan(args)
    sides = {job.side for job in jobs}
    mlflow_version = ensure_mlflow(args.reinstall) if "mlflow" in sides else None
    evidently_version = ensure_evidently(args.reinstall) if "evidently" in sides else None
    prefect_version = ensure_prefect(args.reinstall) if "prefect" in sides else None
    missing = {
        "mlflow": mlflow_version is None,
        "evidently": evidently_version is None,
        "prefect": prefect_version is None,
    }
    results: list[dict[str, Any]] = []
    total = len(jobs) * args.repeat
    done = 0
    for repeat in range(args.repeat):
        for job in jobs:
            done += 1
            label = f"[{done}/{total}] ({job.benchmark}) {job.system}"
            if missing.get(job.side, False):
                result = {
                    "benchmark": job.benchmark,
                    "system": job.system,
                    "ok": False,
                    "error": f"{job.side} is not installed (see the install error above)",
                }
            else:
                with console.status(f"{label} …"):
                    log = logs / f"{job.benchmark}-{job.system}-{repeat + 1}.log"
                    result = run_job(job, args.timeout, log, args.seed)
            result["repeat"] = repeat + 1
            results.append(result)
            status = (
                f"[green]ok[/] {result.get('wall_seconds', 0):.1f} s"
                if result.get("ok")
                else f"[red]failed[/] {result.get('error')}"
            )
            console.print(f"{label}: {status}")

    summary = summarise(results)
    rows = evaluate(summary)
    size = "quick sizes (smoke run)" if args.quick else "full sizes"
    title = (
        f"Keel benchmarks — {size}, median of {args.repeat} — MLflow {mlflow_version or 'n/a'}"
        f" — Evidently {evidently_version or 'n/a'} — Prefect {prefect_version or 'n/a'}"
        f" — {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    console.print()
    console.print(render(rows, title))
    console.print(
        "keel × = how many times faster Keel is than that row on the same work "
        "(above 1: Keel is faster). Logs: "
        f"{logs.relative_to(HERE.parent)}; results: {args.output}"
    )

    report = {
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "options": {
            "only": sorted(args.only),
            "systems": sorted(args.systems),
            "quick": args.quick,
            "repeat": args.repeat,
            "timeout": args.timeout,
            "seed": args.seed,
            "sizes": sizes(args.quick, args),
        },
        "machine": {**machine(), "load_average_at_start": load_start},
        "interpreters": {
            "keel": probe(
                Path(sys.executable),
                ("keel-mlops", "sqlalchemy", "scikit-learn", "fastapi", "uvicorn", "httpx"),
            ),
            "mlflow": probe(
                MLFLOW_PYTHON, ("mlflow", "sqlalchemy", "scikit-learn", "fastapi", "uvicorn")
            )
            if mlflow_version
            else None,
            "evidently": probe(EVIDENTLY_PYTHON, ("evidently", "pandas", "numpy", "scipy"))
            if evidently_version
            else None,
            "prefect": probe(PREFECT_PYTHON, ("prefect",)) if prefect_version else None,
        },
        "rows": rows,
        "summary": [{"benchmark": b, "system": s, **v} for (b, s), v in summary.items()],
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")

    failed = any(not r.get("ok") for r in results)
    missed = any(row["result"] in {"MISS", "n/a", "ERROR"} for row in rows if row["target"])
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
