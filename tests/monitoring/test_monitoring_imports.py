"""The drift path stays light: what it imports beyond numpy and pandas, in a fresh interpreter.

A heavy import on this path costs every caller its resident memory (scipy.stats alone is
~50 MB), which is what the drift benchmark's memory figure is made of at 100,000 rows.
"""

from __future__ import annotations

import json
import subprocess
import sys

# None of these is needed to compare columns with the default methods.
HEAVY = [
    "pyarrow",  # pandas may load it itself; then it is not drift's doing
    "scipy",
    "sklearn",
    "duckdb",
    "sqlalchemy",
    "pydantic",
    "fastapi",
    "fsspec",
    "keel.store",
    "keel.tracking",
    "keel.registry",
]

_PROBE = """
import json, sys
def loaded(names):
    return sorted(n for n in names if n in sys.modules)
import keel.monitoring
light = loaded(["numpy", "pandas", *{heavy!r}])
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
def frame():
    return pd.DataFrame({{
        "x": rng.normal(size=2000),
        "k": rng.integers(0, 3, 2000),
        "s": rng.choice(["a", "b", "c"], 2000).astype(object),
        "b": rng.random(2000) > 0.5,
    }})
reference, current = frame(), frame()  # building frames may load pandas' own extras
before = set(sys.modules)
from keel.monitoring import drift
report = drift(reference, current)
assert {{c.method for c in report.columns}} == {{"wasserstein", "jensenshannon"}}
new = set(sys.modules) - before
print(json.dumps({{"light": light, "drift": sorted(
    h for h in {heavy!r} if any(m == h or m.startswith(h + ".") for m in new)
)}}))
"""


def test_keel_monitoring_and_the_drift_path_import_nothing_heavy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    loaded = json.loads(out.splitlines()[-1])
    assert loaded["light"] == []  # import keel.monitoring: not even numpy or pandas
    assert loaded["drift"] == []  # drift(): nothing but what numpy and pandas bring
