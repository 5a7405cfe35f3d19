"""Figure (j): pipeline overhead — a chain of 100 trivial steps, a fan-out of 1,000, cache hits.

Keel side (``--system keel``), on a fresh SQLite home in ``--workdir``:

* ``chain`` — ``--chain`` steps, each adding 1 to the previous one's output, run with
  ``no_cache=True`` on the ``local`` executor (worker processes forked from a forkserver,
  reused from step to step; the forkserver itself, ~0.3 s once per process, is started by
  the warm-up, as Prefect's side starts its server there) and on ``inline`` (this
  process: the engine's and the records' cost without IPC);
  per-step overhead is the run's wall time divided by the number of steps — everything a
  step costs beyond its (empty) body: worker start-up spread over the run, cache-key and
  lookup, the input read and output write in the blob store, and its records (run, params,
  tags, logs, end).
* ``fan`` — ``--fan`` independent trivial steps, then nothing: the engine's scheduling at
  width, on ``local``.
* ``cached`` — the chain again with the cache on: every step a cache hit; per-hit cost is
  the run's wall time divided by the number of steps.

Prefect side (``--system prefect``, run by ``benchmarks/.venvs/prefect/bin/python``, where
Keel is not importable), on a fresh ``PREFECT_HOME`` (its ephemeral local server, SQLite):
the same flows — the chain as ``@task`` calls inside a ``@flow`` (Prefect runs them in the
flow's process), the fan-out as ``task.submit`` on its default thread-pool task runner, and
the cached chain with ``cache_policy=INPUTS + TASK_SOURCE`` and persisted results.

Every run is checked: all steps finished (or cached), and the chain's last output equals
its length.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from _bench import Timer, check, main, parse_args

try:  # Keel's side; in Prefect's virtualenv Keel is not importable, and not needed
    import keel.pipelines as kp
except ImportError:
    kp = None  # type: ignore[assignment]

SYSTEMS = ("keel", "prefect")

if kp is not None:

    @kp.step
    def start() -> int:
        return 0

    @kp.step
    def inc(x: int) -> int:
        return x + 1

    @kp.step
    def leaf(i: int) -> int:
        return i


def make_chain(n: int) -> kp.Pipeline:
    @kp.pipeline(name="bench_chain")
    def chain():
        value = start()
        for _ in range(n - 1):
            value = inc(value)

    return chain


def make_fan(n: int) -> kp.Pipeline:
    @kp.pipeline(name="bench_fan")
    def fan():
        for i in range(n):
            leaf(i)

    return fan


def timed(pipeline: kp.Pipeline, **options: Any) -> tuple[float, kp.PipelineRunInfo]:
    with Timer() as t:
        run = pipeline.run(**options)
    return t.seconds, run


def bench_keel(args: argparse.Namespace) -> dict[str, Any]:
    return {"figures": keel_figures(args)}


def bench_prefect(args: argparse.Namespace) -> dict[str, Any]:
    return {"figures": prefect_figures(args)}


def keel_figures(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["KEEL_HOME"] = str(args.workdir / "keel-home")
    chain, fan = make_chain(args.chain), make_fan(args.fan)
    results: dict[str, Any] = {"chain_steps": args.chain, "fan_steps": args.fan}
    # warm-up, as Prefect's side starts its server: the database, imports, and the local
    # executor's forkserver (once per process; every run still forks its own workers)
    make_chain(2).run(no_cache=True, executor="inline")
    make_chain(2).run(no_cache=True, executor="local")

    for executor in ("inline", "local"):
        seconds, run = timed(chain, no_cache=True, executor=executor)
        check(run.counts() == {"finished": args.chain}, f"chain on {executor}: {run.counts()}")
        last = kp.load_step_output(run.run_id, run.steps[-1].node)
        check(last == args.chain - 1, f"chain computed {last}, expected {args.chain - 1}")
        results[f"chain_{executor}_s"] = seconds
        results[f"chain_{executor}_ms_per_step"] = seconds * 1000 / args.chain

    seconds, run = timed(chain)
    check(run.counts() == {"cached": args.chain}, f"cached chain: {run.counts()}")
    results["cached_chain_s"] = seconds
    results["cache_hit_ms"] = seconds * 1000 / args.chain

    seconds, run = timed(fan, no_cache=True)
    check(run.counts() == {"finished": args.fan}, f"fan: {run.counts()}")
    results["fan_local_s"] = seconds
    results["fan_local_ms_per_step"] = seconds * 1000 / args.fan
    seconds, run = timed(fan)
    check(run.counts() == {"cached": args.fan}, f"cached fan: {run.counts()}")
    results["cached_fan_s"] = seconds
    results["cached_fan_ms_per_step"] = seconds * 1000 / args.fan
    return results


def prefect_figures(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["PREFECT_HOME"] = str(args.workdir / "prefect-home")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # its server starts in a subprocess: on a loaded machine 20 s (the default) is too short
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] = "true"
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
    from prefect.futures import wait

    cached = INPUTS + TASK_SOURCE

    @task(cache_policy=NO_CACHE)
    def p_start() -> int:
        return 0

    @task(cache_policy=NO_CACHE)
    def p_inc(x: int) -> int:
        return x + 1

    @task(cache_policy=cached)
    def c_start() -> int:
        return 0

    @task(cache_policy=cached)
    def c_inc(x: int) -> int:
        return x + 1

    @task(cache_policy=NO_CACHE)
    def p_leaf(i: int) -> int:
        return i

    @flow
    def chain(n: int, use_cache: bool) -> int:
        first, step = (c_start, c_inc) if use_cache else (p_start, p_inc)
        value = first()
        for _ in range(n - 1):
            value = step(value)
        return value

    @flow
    def fan(n: int) -> int:
        futures = [p_leaf.submit(i) for i in range(n)]
        _done, not_done = wait(futures)
        check(not not_done, "fan: futures left unfinished")
        return sum(f.result() for f in futures)

    results: dict[str, Any] = {"chain_steps": args.chain, "fan_steps": args.fan}
    chain(2, False)  # warm-up: start the ephemeral server outside the figures
    with Timer() as t:
        last = chain(args.chain, False)
    check(last == args.chain - 1, f"chain computed {last}")
    results["chain_s"] = t.seconds
    results["chain_ms_per_step"] = t.seconds * 1000 / args.chain
    chain(args.chain, True)  # fill the cache
    with Timer() as t:
        last = chain(args.chain, True)
    check(last == args.chain - 1, f"cached chain computed {last}")
    results["cached_chain_s"] = t.seconds
    results["cache_hit_ms"] = t.seconds * 1000 / args.chain
    with Timer() as t:
        total = fan(args.fan)
    check(total == sum(range(args.fan)), f"fan computed {total}")
    results["fan_s"] = t.seconds
    results["fan_ms_per_step"] = t.seconds * 1000 / args.fan
    return results


if __name__ == "__main__":
    arguments = parse_args(__doc__.splitlines()[0], SYSTEMS, {"chain": 100, "fan": 1000})
    if arguments.system == "keel":
        main("pipelines", arguments, bench_keel, packages=("cloudpickle",))
    else:
        main("pipelines", arguments, bench_prefect, packages=("prefect",))
