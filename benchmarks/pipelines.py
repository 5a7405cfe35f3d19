"""Figure (h): pipeline overhead — a chain of 100 trivial steps, a fan-out of 1,000, cache hits.

Keel side (``--system keel``), on a fresh SQLite home in ``--workdir``:

* ``chain`` — ``--chain`` steps, each adding 1 to the previous one's output, run with
  ``no_cache=True`` on the ``local`` executor (spawned worker processes, reused from step to
  step) and on ``inline`` (this process: the engine's and the records' cost without IPC);
  per-step overhead is the run's wall time divided by the number of steps — everything a
  step costs beyond its (empty) body: worker start-up spread over the run, cache-key and
  lookup, the input read and output write in the blob store, and its records (run, params,
  tags, logs, end).
* ``fan`` — ``--fan`` independent trivial steps, then nothing: the engine's scheduling at
  width, on ``local``.
* ``cached`` — the chain again with the cache on: every step a cache hit; per-hit cost is
  the run's wall time divided by the number of steps.

Every run is checked: all steps finished (or cached), and the chain's last output equals
its length. Prefect's side (same flows, in its own virtualenv) is not wired up yet.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import keel.pipelines as kp
from _bench import Timer, check, main, parse_args

SYSTEMS = ("keel",)


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
    os.environ["KEEL_HOME"] = str(args.workdir / "keel-home")
    chain, fan = make_chain(args.chain), make_fan(args.fan)
    results: dict[str, Any] = {"chain_steps": args.chain, "fan_steps": args.fan}

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


if __name__ == "__main__":
    arguments = parse_args(__doc__.splitlines()[0], SYSTEMS, {"chain": 100, "fan": 1000})
    main("pipelines", arguments, bench_keel, packages=("cloudpickle",))
