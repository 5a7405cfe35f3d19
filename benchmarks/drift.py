"""(h)/(i) Data drift of a current frame against a reference: Keel vs Evidently vs scipy.

    python benchmarks/drift.py --system keel|evidently|floor|floor_numpy --rows 1000000

Both frames have ``--rows`` rows, 20 numeric columns (normal) and 5 categorical ones
(object strings from a 20-value vocabulary, Zipf-like frequencies), generated here with
numpy from ``--seed``, so every system sees the same numbers. The current frame moves 4
numeric columns by 0.25 standard deviations and reshuffles the frequencies of one
categorical column; the other 20 columns are drawn from the same distributions.

What is timed (one call, after an untimed warm-up on a 2,000-row slice that loads the
modules):

* ``keel``: ``keel.monitoring.drift(reference, current)`` — above 1,000 rows its rule picks
  the normed Wasserstein distance for numbers and Jensen–Shannon for categories, which is
  what Evidently's ``DataDriftPreset`` picks too (same thresholds, 0.1).
* ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)``, in its own
  virtualenv (``benchmarks/.venvs/evidently``); reading the snapshot's values is untimed.
* ``floor``: a hand-written loop of scipy calls — ``scipy.stats.wasserstein_distance`` /
  ``np.std`` per numeric column, ``value_counts`` + ``scipy.spatial.distance.jensenshannon``
  per categorical column.
* ``floor_numpy``: the tightest single-threaded numpy version of the same numbers (sort
  both samples, mean absolute difference of equal-sized sorted samples; factorize and
  bincount) — the cost of the arithmetic itself, for reference.

Peak memory is the process's RSS high-water mark (``ru_maxrss``) read right after the
timed call, in a fresh process per system; ``data_rss_mb`` is the mark before it (the
frames and the imports) and ``frames_rss_mb`` the mark once the frames are built, before
the system's own modules load (the interpreter, numpy, pandas — and whatever pandas loads
itself — and the data: what every system's peak includes, in its own environment).
After measuring, every system's verdicts are checked against the scipy floor's, computed
then (untimed): a system that disagrees on any column's verdict fails its job, so the
sides are known to agree where the methods are the same.

Three things would otherwise make the same work weigh differently in the two environments
(measured at 100,000 rows), so each job removes them before it builds the frames:

* Column labels are an object Index on both sides. pandas 3 (Keel's venv) makes string
  labels an Arrow-backed ``str`` Index, and its first Arrow allocation sets up pyarrow's
  memory pool (~4 MB RSS); pandas 2 (Evidently's venv) keeps labels as objects. The
  values were already object strings on both sides for the same reason.
* The environment's shared libraries (``*.so`` under site-packages) are dropped from the
  page cache (``posix_fadvise(DONTNEED)``; pages another process maps stay), so each job
  maps them as read from disk. Files pip has just written sit in the cache in large
  folios that map whole: the same numpy ``_multiarray_umath`` then counts 6.2 MB of RSS
  instead of 2.8 MB, and a freshly installed Evidently venv's frames mark read 164 MB
  instead of 147 MB.
* Every module the job imports loads from bytecode. pip writes the ``.pyc`` files of what
  it installs (all of Evidently's venv; numpy, pandas and scipy in Keel's), but Keel is an
  editable checkout, whose bytecode Python writes on first import only when
  ``PYTHONDONTWRITEBYTECODE`` is unset: with it set, every Keel job compiled its modules
  from source inside the measured process (+0.3 MB of RSS). So each job first has
  ``compileall`` (in a child process) compile the packages it may import: a no-op wherever
  the bytecode is already there, as it is for every pip-installed package.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import sysconfig
from typing import Any

from _bench import BenchmarkError, Timer, check, main, parse_args

NUMERIC, CATEGORICAL, VOCABULARY = 20, 5, 20
SHIFTED_NUMERIC = ("n0", "n1", "n2", "n3")
SHIFTED_CATEGORICAL = ("c0",)
THRESHOLD = 0.1  # both methods are distances: drift when >= 0.1


def frames(rows: int, seed: int) -> tuple[Any, Any]:
    """The reference and current frames (see the module doc).

    Built without large temporaries (the numbers drawn straight into one column-major
    block the frame then holds, each category column added as its own block), so the
    RSS mark before the timed call is the data itself and the peak after it shows what
    the system under test added.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"value_{i:02d}" for i in range(VOCABULARY)], dtype=object)
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    weights /= weights.sum()

    def frame(current: bool) -> pd.DataFrame:
        numbers = np.empty((rows, NUMERIC), dtype=np.float64, order="F")
        for i in range(NUMERIC):
            rng.standard_normal(out=numbers[:, i])
            if current and f"n{i}" in SHIFTED_NUMERIC:
                numbers[:, i] += 0.25
        labels = pd.Index([f"n{i}" for i in range(NUMERIC)], dtype=object)
        data = pd.DataFrame(numbers, columns=labels, copy=False)
        for i in range(CATEGORICAL):
            name = f"c{i}"
            p = weights[::-1] if current and name in SHIFTED_CATEGORICAL else weights
            codes = rng.choice(VOCABULARY, size=rows, p=p)
            data[name] = pd.Series(vocabulary[codes], dtype=object, copy=False)
            del codes
        return data

    return frame(False), frame(True)


def floor_scipy(ref: Any, cur: Any) -> dict[str, float]:
    import numpy as np
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    out = {}
    for name in ref.columns:
        if name.startswith("n"):
            a, b = ref[name].to_numpy(), cur[name].to_numpy()
            out[name] = wasserstein_distance(a, b) / max(np.std(a), 0.001)
        else:
            p = ref[name].value_counts()
            q = cur[name].value_counts()
            keys = p.index.union(q.index)
            p = p.reindex(keys, fill_value=0).to_numpy(np.float64)
            q = q.reindex(keys, fill_value=0).to_numpy(np.float64)
            out[name] = float(jensenshannon(p / p.sum(), q / q.sum()))
    return out


def floor_numpy(ref: Any, cur: Any) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    out = {}
    for name in ref.columns:
        if name.startswith("n"):
            a, b = np.sort(ref[name].to_numpy()), np.sort(cur[name].to_numpy())
            out[name] = float(np.mean(np.abs(a - b))) / max(float(np.std(a)), 0.001)
        else:
            codes, uniques = pd.factorize(pd.concat([ref[name], cur[name]], ignore_index=True))
            n = len(ref)
            p = np.bincount(codes[:n], minlength=len(uniques)) / n
            q = np.bincount(codes[n:], minlength=len(uniques)) / (len(codes) - n)
            m = (p + q) / 2
            kl = [np.sum(x[x > 0] * np.log(x[x > 0] / m[x > 0])) for x in (p, q)]
            out[name] = float(np.sqrt((kl[0] + kl[1]) / 2))
    return out


def keel_side(ref: Any, cur: Any) -> dict[str, float]:
    from keel.monitoring import drift

    report = drift(ref, cur)
    methods = {c.method for c in report.columns}
    check(methods == {"wasserstein", "jensenshannon"}, f"unexpected methods {methods}")
    return {c.column: c.statistic for c in report.columns}


def evidently_side(ref: Any, cur: Any) -> Any:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    return Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)


def evidently_values(snapshot: Any) -> dict[str, float]:
    out = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            method = config.get("method", "")
            check(
                "Wasserstein" in method or "Jensen" in method,
                f"Evidently chose {method!r} for {config.get('column')}",
            )
            check(config.get("threshold") == THRESHOLD, f"Evidently threshold {config}")
            out[config["column"]] = float(metric["value"])
    return out


SIDES = {
    "keel": keel_side,
    "evidently": evidently_side,
    "floor": floor_scipy,
    "floor_numpy": floor_numpy,
}


def settle_page_cache() -> int:
    """Drop this environment's shared libraries from the page cache; return the files advised.

    Only page-cache state changes (nothing is deleted); see the module doc for why.
    """
    if not hasattr(os, "posix_fadvise"):
        return 0
    advised = 0
    roots = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    for root in roots:
        for folder, _, files in os.walk(root):
            for name in files:
                if ".so" not in name:
                    continue
                try:
                    fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    advised += 1
                finally:
                    os.close(fd)
    return advised


PACKAGES = ("keel", "evidently", "numpy", "pandas", "scipy")  # the sides' imports
_COMPILE = """
import compileall, importlib.util, sys
for name in sys.argv[1:]:
    spec = importlib.util.find_spec(name)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(folder, quiet=2)
"""


def compile_sources() -> None:
    """Write the bytecode of the packages a side imports, where it is missing (module doc).

    In a child process, so compiling weighs nothing in this job's RSS.
    """
    subprocess.run([sys.executable, "-c", _COMPILE, *PACKAGES], check=False, timeout=600)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def run(args: Any) -> dict[str, Any]:
    compile_sources()
    settle_page_cache()
    ref, cur = frames(args.rows, args.seed)
    frames_mb = peak_mb()
    work = SIDES[args.system]
    work(ref.iloc[:2000], cur.iloc[:2000])  # warm-up: imports, caches
    data_mb = peak_mb()
    with Timer() as timer:
        result = work(ref, cur)
    peak = peak_mb()
    values = evidently_values(result) if args.system == "evidently" else result
    check(len(values) == NUMERIC + CATEGORICAL, f"{len(values)} columns compared, not 25")
    reference = values if args.system == "floor" else floor_scipy(ref, cur)
    drifted = sorted(c for c, v in values.items() if v >= THRESHOLD)
    expected = sorted(c for c, v in reference.items() if v >= THRESHOLD)
    if drifted != expected:
        raise BenchmarkError(f"verdicts differ from scipy's: {drifted} vs {expected}")
    check(
        set(drifted) == {*SHIFTED_NUMERIC, *SHIFTED_CATEGORICAL},
        f"drifted columns {drifted} are not the shifted ones",
    )
    gap = max(abs(values[c] - reference[c]) for c in values)
    return {
        "figures": {
            "seconds": timer.seconds,
            "peak_rss_mb": peak,
            "data_rss_mb": data_mb,
            "frames_rss_mb": frames_mb,
            "rows": args.rows,
            "columns_drifted": len(drifted),
            "max_statistic_gap": gap,
        }
    }


if __name__ == "__main__":
    arguments = parse_args(__doc__.splitlines()[0], SIDES, {"rows": 1_000_000})
    main(
        "h",  # the runner files the 100,000-row jobs under (i)
        arguments,
        run,
        packages=("keel-mlops", "evidently", "numpy", "scipy", "pandas"),
    )
