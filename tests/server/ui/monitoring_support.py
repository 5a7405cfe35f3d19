"""A Keel home for the monitoring page's tests: deployments that served real traffic.

``cancer`` version 1 (a version with a training profile and offline metrics) backs three
deployments. ``churn-prod`` and ``calm-prod`` have a day of history written through the
real prediction logger over 23 hours (``tests.monitoring.report_support``: ``churn-prod``'s
inputs drift from hour 12) and then answer real requests through keel serve's app on
127.0.0.1 (drifted ones for ``churn-prod``); ``quiet-prod`` never served. A rule on
``churn-prod``'s drift share fired in a real evaluation pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOUR = 3_600_000
SERVED = 6  # requests through keel serve per deployment, 5 rows each
RULE = "churn-drift-high"
HISTORY_HOURS = 23  # all of it inside the page's last 24 hours however long the tests take


@dataclass(frozen=True)
class MonitoringHome:
    """The home and when the traffic ended."""

    home: Path
    now_ms: int


def _serve(home: Any, deployment: str, *, scale: float) -> None:
    import httpx
    from tests.monitoring.monitor_live_support import oip_body

    from keel.monitoring.prediction_log import logger_from_settings
    from keel.serving._uvicorn import serving
    from keel.serving.rest import create_app
    from keel.serving.service import ModelService
    from keel.stores import current_stores

    service = ModelService.from_uri("models:/cancer/1")
    service.load()
    logger = logger_from_settings(current_stores(), enabled=True, flush_interval=3600)
    # Random rows: the dataset's first rows are mostly one class, a drift of their own.
    X = (home.X * scale).sample(n=SERVED * 5, random_state=3).reset_index(drop=True)
    with serving(create_app(service, prediction_log=logger, deployment=deployment)) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(SERVED):
                answer = client.post("/v2/models/cancer/infer", json=oip_body(X, i * 5, 5))
                if answer.status_code != 200:
                    raise AssertionError(answer.text)
    # The app's shutdown flushed the log; closing again is harmless.
    if logger is not None:
        logger.close()


def seed_monitoring(path: Path) -> MonitoringHome:
    """Build the home described in the module doc in ``path``."""
    from tests.monitoring.monitor_live_support import build_home, keel_home
    from tests.monitoring.report_support import seed_traffic

    import keel
    from keel.monitoring.alerts import add_alert_rule
    from keel.monitoring.alerts.runner import run_pass
    from keel.stores import current_stores

    home = build_home(path)
    with keel_home(home.path):
        history_end = int(time.time() * 1000) - 120_000
        seed_traffic(home, "churn-prod", drift=True, hours=HISTORY_HOURS, end_ms=history_end)
        seed_traffic(home, "calm-prod", drift=False, hours=HISTORY_HOURS, end_ms=history_end)
        keel.create_deployment("quiet-prod", "models:/cancer/1")
        _serve(home, "churn-prod", scale=3.0)
        _serve(home, "calm-prod", scale=1.0)
        add_alert_rule(
            RULE, deployment="churn-prod", metric="drift_share", op=">", threshold=0.3,
            window="1h", severity="critical",
        )  # fmt: skip
        now = int(time.time() * 1000)
        passed = run_pass(current_stores(), now=now)
        if passed.errors:
            raise AssertionError(passed.errors)
    return MonitoringHome(home.path, now)
