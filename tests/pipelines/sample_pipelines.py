"""Module-level steps and pipelines the tests run (workers import them by name).

Nothing heavy is imported at the top, so a worker process starts without pandas; steps
that need it import it themselves.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import keel.pipelines as kp

log = logging.getLogger("sample")


@kp.step
def number(value: int) -> int:
    print(f"number {value}")
    return value


@kp.step
def add(a: int, b: int) -> int:
    log.warning("adding %s and %s", a, b)
    return a + b


@kp.step
def total(values: list) -> int:
    return sum(values)


@kp.step
def boom(value: int, fail: bool = True) -> int:
    if fail:
        raise ValueError(f"boom on {value}")
    return value * 10


@kp.pipeline
def arithmetic(x: int = 1, y: int = 2):
    """number(x) + number(y), then doubled through add."""
    a = number(x)
    b = number(y)
    s = add(a, b)
    add(s, s)


@kp.pipeline
def branches(fail: bool = True):
    """A failing branch (boom → add) beside an independent one (number → add)."""
    bad = boom(number(1), fail=fail)
    add(bad, bad)
    good = number(2)
    add(good, good)


@kp.pipeline
def fan(n: int = 5):
    """n independent steps, then one that sums all their outputs."""
    total([number(i) for i in range(n)])


@kp.step(retries=2, retry_delay=0.01, backoff=1.0)
def flaky(marker: str) -> str:
    """Fails while the marker file holds fewer than 2 lines (one line per attempt)."""
    path = Path(marker)
    with path.open("a", encoding="utf-8") as f:
        f.write("attempt\n")
    if len(path.read_text(encoding="utf-8").splitlines()) < 2:
        raise RuntimeError("not yet")
    return "ok"


@kp.pipeline
def retrying(marker: str = "marker.txt"):
    flaky(marker)


@kp.step(timeout=1.0)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@kp.pipeline
def slow(seconds: float = 60.0):
    sleepy(seconds)
    number(3)


@kp.step
def crash(code: int) -> int:
    os._exit(code)


@kp.pipeline
def crashing():
    crash(7)
    number(4)


@kp.step
def generator_maker(n: int) -> object:
    return (i for i in range(n))


@kp.pipeline
def unstorable():
    generator_maker(3)


@kp.step
def frame(n: int) -> object:
    import pandas as pd

    return pd.DataFrame({"x": list(range(n))}, index=[f"r{i}" for i in range(n)])


@kp.step
def fit(data: object) -> object:
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(data[["x"]], data["x"] * 2.0)


@kp.step
def predict(model: object, data: object) -> list:
    return [round(float(v), 6) for v in model.predict(data[["x"]])]


@kp.pipeline
def modelling(n: int = 6):
    data = frame(n)
    predict(fit(data), data)


@kp.step
def read_file(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


@kp.pipeline
def reading(path: str = "input.txt"):
    read_file.with_options(name="read", inputs=(path,))(path)


@kp.step(cpus=0.5)
def ray_resources(tag: str) -> dict:
    import ray

    return {"tag": tag, "cpu": ray.get_runtime_context().get_assigned_resources().get("CPU")}


@kp.step(gpus=8)
def needs_gpus(x: int) -> int:
    return x


@kp.pipeline
def on_ray(fail: bool = True):
    """Resources, a failure that stops only its dependants, and an unsatisfiable step."""
    ray_resources("a")
    bad = boom(number(1), fail=fail)
    add(bad, bad)
    needs_gpus(1)
