"""The prediction logger loads the writer's heavy modules when warmed, not when imported."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import sys
from keel.monitoring.prediction_log import PredictionLogger
from keel.monitoring.prediction_store import log_root
logger = PredictionLogger(log_root())
before = "pyarrow.parquet" in sys.modules, "keel.monitoring.prediction_rows" in sys.modules
logger.warm()
after = "pyarrow.parquet" in sys.modules, "keel.monitoring.prediction_rows" in sys.modules
logger.close()
print(before, after)
"""


def test_warm_imports_the_writer_before_the_first_flush(keel_env: object) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.split("\n")[0] == "(False, False) (True, True)"
