"""A deployment's prediction log split into fixed windows, each with its monitoring figures.

``monitor_windows("churn-prod", window="1h", start=..., end=...)`` reads the deployment's
prediction log (``keel.monitoring.read_predictions``, feedback joined) and its serving
process samples (``keel.monitoring.health_sampler``) and returns one ``WindowReport``
per window that saw traffic, oldest first. Windows are aligned to the epoch: a ``1h``
window starts on the hour (UTC), a ``1d`` window at midnight UTC; a window cut by
``start`` or ``end`` covers only that part (its throughput divides by what is covered).

Each report carries the window's service health (``keel.monitoring.health``), the
serving process's CPU and memory, and per model version that answered in it
(``keel.monitoring.windows_data``): data quality and drift against the version's
training profile, and live performance against feedback with its decay from the
version's offline metrics. A version without a reference profile or a run still gets its
health and performance figures; the report's notes say what is absent and why.

``compute_windows(frame, ...)`` does the same over a frame of the log's shape, with the
references and offline metrics given, for callers that already hold the rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.health import ProcessHealth, ServiceHealth, process_health, service_health
from keel.monitoring.windows_data import VersionWindow, version_window

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring._profile import ReferenceProfile
    from keel.stores import Stores

__all__ = [
    "MAX_WINDOW_MS",
    "REQUIRED_COLUMNS",
    "WindowReport",
    "compute_window",
    "compute_windows",
    "monitor_windows",
    "parse_window",
]

_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_WINDOW = re.compile(r"\s*(\d{1,12})\s*([smhd])\s*")
MAX_WINDOW_MS = 366 * 86_400_000  # a year: longer windows are a mistake, not a question
MAX_WINDOWS = 10_000  # per call: a minute window over a year is 525,600 reports
REQUIRED_COLUMNS = ("request_id", "model", "version", "time_ms", "latency_ms", "status")
DEFAULT_TOLERANCE = 0.05

References = Mapping[tuple[str, str], "ReferenceProfile | str"]
Offline = Mapping[tuple[str, str], Mapping[str, float]]


def parse_window(window: str | int | float) -> int:
    """Return a window length in milliseconds: ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``, or seconds.

    Zero, negative, non-numeric and longer-than-a-year windows are an ``InvalidInput``.
    """
    if isinstance(window, bool):
        raise InvalidInput(f"window must be a duration such as '5m' or '1h', not {window!r}")
    if isinstance(window, int | float):
        if not math.isfinite(window) or window <= 0:
            raise InvalidInput(f"window must be a positive number of seconds, not {window!r}")
        ms = round(window * 1000)
    elif isinstance(window, str):
        match = _WINDOW.fullmatch(window)
        if match is None:
            raise InvalidInput(
                f"window {window[:40]!r} is not a duration: write a positive whole number and a "
                "unit s, m, h or d, e.g. '5m', '1h' or '1d'"
            )
        ms = int(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise InvalidInput(f"window must be a duration such as '5m' or '1h', not {window!r}")
    if ms <= 0:
        raise InvalidInput(f"window {window!r} is empty: it must be at least 1 second")
    if ms < 1000:
        raise InvalidInput(f"window {window!r} is shorter than the smallest window, 1s")
    if ms > MAX_WINDOW_MS:
        raise InvalidInput(f"window {window!r} is longer than a year (366d), the largest window")
    return ms


def to_ms(value: int | datetime | None, *, name: str) -> int | None:
    """Return ``value`` as ms since the epoch (an aware datetime or a non-negative int)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} must be a timezone-aware datetime (e.g. in UTC)")
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be ms since the epoch or an aware datetime, not {value!r}")
    if value < 0:
        raise InvalidInput(f"{name} must not be before the epoch, got {value}")
    return value


@dataclass(frozen=True)
class WindowReport:
    """One window: its bounds (ms, end exclusive), health, process figures and versions."""

    start_ms: int
    end_ms: int
    health: ServiceHealth | None
    process: ProcessHealth | None = None
    versions: tuple[VersionWindow, ...] = ()
    deployment: str | None = None

    @property
    def primary(self) -> VersionWindow | None:
        """The version that answered the most requests in the window (ties: the first)."""
        return max(self.versions, key=lambda v: v.requests, default=None)

    def to_dict(self) -> dict[str, Any]:
        """Return the window as JSON-ready data."""
        return {
            "deployment": self.deployment,
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "health": None if self.health is None else self.health.to_dict(),
            "process": None if self.process is None else self.process.to_dict(),
            "versions": [v.to_dict() for v in self.versions],
        }


def _check_frame(frame: Any) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise InvalidInput(f"the prediction log must be a pandas DataFrame, not {type(frame)}")
    absent = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if absent and len(frame):
        raise InvalidInput(
            f"the prediction log frame has no column {', '.join(map(repr, absent))}; "
            "pass what keel.monitoring.read_predictions returns"
        )
    return frame


def compute_windows(
    frame: pd.DataFrame,
    *,
    window: str | int | float = "1h",
    start: int | datetime | None = None,
    end: int | datetime | None = None,
    references: References | None = None,
    offline: Offline | None = None,
    samples: pd.DataFrame | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    deployment: str | None = None,
) -> list[WindowReport]:
    """Return the ``WindowReport`` of every window of ``frame`` that saw traffic, oldest first.

    ``references`` and ``offline`` map ``(model, version)`` to the version's reference
    profile (or why it has none) and offline metrics; ``samples`` are process samples
    (``time_ms``, ``cpu_percent``, ``memory_rss_bytes``). Rows outside [start, end) are
    left out; more than 10,000 windows in one call is an ``InvalidInput``.
    """
    window_ms = parse_window(window)
    lo, hi = _bounds(start, end)
    return _reports(
        _check_frame(frame),
        window_ms=window_ms,
        origin=0,
        lo=lo,
        hi=hi,
        label=repr(window),
        references=references or {},
        offline=offline or {},
        samples=samples,
        tolerance=tolerance,
        deployment=deployment,
    )


def compute_window(
    frame: pd.DataFrame,
    *,
    start: int,
    end: int,
    references: References | None = None,
    offline: Offline | None = None,
    samples: pd.DataFrame | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    deployment: str | None = None,
) -> WindowReport:
    """Return one ``WindowReport`` over [start, end) (not aligned), empty without traffic."""
    lo, hi = _bounds(start, end)
    if lo is None or hi is None:
        raise InvalidInput("a single window needs both start and end")
    reports = _reports(
        _check_frame(frame),
        window_ms=hi - lo,
        origin=lo,
        lo=lo,
        hi=hi,
        label=f"{hi - lo} ms",
        references=references or {},
        offline=offline or {},
        samples=samples,
        tolerance=tolerance,
        deployment=deployment,
    )
    return reports[0] if reports else WindowReport(lo, hi, None, deployment=deployment)


def _bounds(start: int | datetime | None, end: int | datetime | None) -> tuple[Any, Any]:
    lo, hi = to_ms(start, name="start"), to_ms(end, name="end")
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidInput(f"end ({hi}) must be after start ({lo})")
    return lo, hi


def _inside(times: pd.Series, lo: int | None, hi: int | None) -> Any:
    keep = times.notna().to_numpy()
    if lo is not None:
        keep = keep & (times >= lo).to_numpy()
    if hi is not None:
        keep = keep & (times < hi).to_numpy()
    return keep


def _reports(
    frame: pd.DataFrame,
    *,
    window_ms: int,
    origin: int,
    lo: int | None,
    hi: int | None,
    label: str,
    references: References,
    offline: Offline,
    samples: pd.DataFrame | None,
    tolerance: float,
    deployment: str | None,
) -> list[WindowReport]:
    import numpy as np
    import pandas as pd

    index = np.zeros(0, dtype=np.int64)
    if len(frame):
        times = pd.to_numeric(frame["time_ms"], errors="coerce")
        keep = _inside(times, lo, hi)
        frame = frame.loc[keep]
        index = (times[keep].to_numpy(dtype=np.int64) - origin) // window_ms
    proc: dict[int, ProcessHealth] = {}
    if samples is not None and len(samples):
        stimes = pd.to_numeric(samples["time_ms"], errors="coerce")
        skeep = _inside(stimes, lo, hi)
        sindex = (stimes[skeep].to_numpy(dtype=np.int64) - origin) // window_ms
        proc = process_health(samples.loc[skeep], sindex)
    windows = sorted(set(np.unique(index).tolist()) | set(proc))
    if len(windows) > MAX_WINDOWS:
        raise InvalidInput(
            f"{len(windows):,} windows of {label} in one call; the most is {MAX_WINDOWS:,}: "
            "use a longer window or a shorter time range"
        )
    spans = {}
    for w in windows:
        w_start, w_end = origin + w * window_ms, origin + (w + 1) * window_ms
        covered = min(w_end, w_end if hi is None else hi) - max(
            w_start, w_start if lo is None else lo
        )
        spans[w] = max(covered, 0) / 1000.0
    health = service_health(frame, index, spans) if len(frame) else {}
    per_version = _versions(frame, index, references, offline, tolerance)
    return [
        WindowReport(
            start_ms=origin + w * window_ms,
            end_ms=origin + (w + 1) * window_ms,
            health=health.get(w),
            process=proc.get(w),
            versions=tuple(per_version.get(w, ())),
            deployment=deployment,
        )
        for w in windows
    ]


def _versions(
    frame: pd.DataFrame,
    index: Any,
    references: References,
    offline: Offline,
    tolerance: float,
) -> dict[int, list[VersionWindow]]:
    out: dict[int, list[VersionWindow]] = {}
    if len(frame) == 0:
        return out
    keyed = frame.assign(_window=index)
    groups = keyed.groupby(["_window", "model", "version"], sort=True, dropna=False)
    for (w, model, version), rows in groups:  # one pass per (window, version), not per row
        key = (str(model), str(version))
        out.setdefault(int(w), []).append(
            version_window(
                rows.drop(columns="_window"),
                model=key[0],
                version=key[1],
                reference=references.get(key, "no reference profile was given"),
                offline=offline.get(key, {}),
                tolerance=tolerance,
            )
        )
    return out


def monitor_windows(
    deployment: str,
    *,
    window: str | int | float = "1h",
    start: int | datetime | None = None,
    end: int | datetime | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    stores: Stores | None = None,
) -> list[WindowReport]:
    """Return the deployment's ``WindowReport`` per window with traffic (see the module doc).

    ``start`` defaults to 24 hours before ``end`` and ``end`` to now. A deployment with
    no logged traffic in the range that the store does not know is a ``NotFound``.
    """
    import time

    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.windows_sources import load_inputs

    check_deployment_name(deployment)
    parse_window(window)
    if stores is None:
        from keel.stores import current_stores

        stores = current_stores()
    hi = to_ms(end, name="end")
    hi = int(time.time() * 1000) if hi is None else hi
    lo = to_ms(start, name="start")
    lo = max(hi - 86_400_000, 0) if lo is None else lo
    if hi <= lo:
        raise InvalidInput(f"end ({hi}) must be after start ({lo})")
    data = load_inputs(stores, deployment, lo, hi)
    return compute_windows(
        data.frame,
        window=window,
        start=lo,
        end=hi,
        references=data.references,
        offline=data.offline,
        samples=data.samples,
        tolerance=tolerance,
        deployment=deployment,
    )
