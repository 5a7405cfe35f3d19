"""The periodic jobs the monitoring domain gives ``keel server`` (see :mod:`keel.scheduler`).

``monitoring.figures`` publishes every deployment's figures as ``keel_monitor_*`` gauges
and ``monitoring.health-sampler`` records this server's CPU and memory for the windows'
service health (both on every server, not exclusive). ``alerts.evaluate`` evaluates every
enabled alert rule every ``alert_interval`` seconds (setting ``KEEL_ALERT_INTERVAL``, default 15 s),
exclusive: with several servers on one database, one of them evaluates. Each rule's
figures come from ``keel.monitoring.figures.compute_figures`` over the rule's window,
unless ``set_figure_source`` chose another (tests drive figures that way).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.config import KeelSettings
    from keel.monitoring.alerts.runner import FigureSource
    from keel.scheduler import PeriodicJob
    from keel.stores import Stores

__all__ = ["alerts_job", "server_jobs", "set_figure_source"]

_log = logging.getLogger(__name__)
_source: FigureSource | None = None


def set_figure_source(source: FigureSource | None) -> None:
    """Make the alerts job read figures from ``source`` (None: ``compute_figures`` again)."""
    global _source
    if source is not None and not callable(source):
        from keel.errors import InvalidInput

        raise InvalidInput(
            "a figure source is a callable (stores, deployment, *, window_s, now_ms)"
        )
    _source = source


def alerts_job(stores: Stores, *, every_s: float = 15.0) -> PeriodicJob:
    """Return the job evaluating every enabled alert rule on ``stores`` every ``every_s`` s."""
    from keel.scheduler import PeriodicJob

    def run() -> None:
        from keel.monitoring.alerts.runner import run_pass

        report = run_pass(stores, figure_source=_source)
        for rule, errors in report.errors.items():
            _log.debug("alert rule %s: %s", rule, "; ".join(errors))

    return PeriodicJob("alerts.evaluate", every_s, run, exclusive=True)


def server_jobs(stores: Stores, settings: KeelSettings | None = None) -> list[PeriodicJob]:
    """Return the jobs to run in a server on ``stores``: the ``keel_monitor_*`` gauges
    (``keel.monitoring.figures.figures_job``, every server) and alert evaluation, where
    the metadata database is local (a server on another server's metadata evaluates
    nothing: the one on the database does)."""
    from keel.monitoring.figures import figures_job

    jobs = [figures_job(stores)]
    if getattr(stores.tracking, "db", None) is not None:
        from keel.monitoring.health_sampler import health_sampling_job

        # Where the prediction log is: the local artifact store. (A server on another
        # server's metadata has no root of its own unless KEEL_ARTIFACT_URI names one.)
        jobs.append(health_sampling_job(stores))
        jobs.append(alerts_job(stores, every_s=_interval(settings)))
    return jobs


def _interval(settings: KeelSettings | None) -> float:
    # The server's own settings (its home's config.toml), not this process's defaults.
    if settings is None:
        from keel.config import get_settings

        settings = get_settings()
    value: Any = getattr(settings, "alert_interval", 15.0)
    return float(value)
