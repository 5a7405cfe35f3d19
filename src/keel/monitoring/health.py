"""Service health per window from the prediction log: requests, errors, latency percentiles.

The log has one row per predicted row; health is per *request*, so each request (its
``request_id``) counts once, with its own latency and status. Per window:

* ``requests``; ``throughput_rps`` = requests / the seconds of the window covered;
* ``error_rate``: share of requests that failed (status >= 500: a model failure or an
  overload), as the deployment data plane counts errors; ``rejected_rate``: share refused
  as bad input (4xx), reported apart because the caller, not the model, was wrong;
* ``latency_p50_ms`` / ``p95`` / ``p99``: over the answered (status 200) requests whose
  latency is finite (numpy's linear percentile); NaN or ±inf latencies are counted in
  ``bad_latencies`` and left out. No answered request: the percentiles are None.

Process figures (CPU, memory of the serving process) come from ``keel.monitoring.
health_sampler`` and are joined per window by the caller.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ProcessHealth", "ServiceHealth", "process_health", "service_health"]


@dataclass(frozen=True)
class ServiceHealth:
    """One window's request figures (see the module doc)."""

    requests: int
    rows: int
    throughput_rps: float
    error_rate: float
    rejected_rate: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    bad_latencies: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready data."""
        return asdict(self)


@dataclass(frozen=True)
class ProcessHealth:
    """One window's serving-process figures: mean CPU percent, peak resident memory."""

    samples: int
    cpu_percent: float | None
    memory_rss_bytes: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as JSON-ready data."""
        return asdict(self)


def service_health(
    frame: pd.DataFrame, window_index: Any, spans_s: dict[int, float]
) -> dict[int, ServiceHealth]:
    """Return each window's ``ServiceHealth``; ``window_index`` gives each row's window.

    ``spans_s`` maps a window to the seconds of it that the query covers (a window cut by
    the query's start or end is shorter), for the throughput.
    """
    import numpy as np
    import pandas as pd

    work = pd.DataFrame(
        {
            "window": np.asarray(window_index, dtype=np.int64),
            "request_id": frame["request_id"].to_numpy(),
            "status": pd.to_numeric(frame["status"], errors="coerce").to_numpy(dtype=np.float64),
            "latency": pd.to_numeric(frame["latency_ms"], errors="coerce").to_numpy(
                dtype=np.float64
            ),
        }
    )
    rows = work.groupby("window").size()
    requests = work.drop_duplicates(["window", "request_id"])
    grouped = requests.groupby("window")
    count = grouped.size()
    errors = (requests["status"] >= 500).groupby(requests["window"]).sum()
    rejected = (
        ((requests["status"] >= 400) & (requests["status"] < 500)).groupby(requests["window"]).sum()
    )
    ok = requests[requests["status"] == 200]
    finite = np.isfinite(ok["latency"].to_numpy())
    bad = (~pd.Series(finite, index=ok.index)).groupby(ok["window"]).sum()
    good = ok[finite]
    quantiles = good.groupby("window")["latency"].quantile([0.5, 0.95, 0.99]).unstack()
    out: dict[int, ServiceHealth] = {}
    for window, n in count.items():
        key = int(window)
        span = spans_s.get(key, 0.0)
        q = quantiles.loc[window] if window in quantiles.index else None
        out[key] = ServiceHealth(
            requests=int(n),
            rows=int(rows.loc[window]),
            throughput_rps=float(n) / span if span > 0 else 0.0,
            error_rate=float(errors.loc[window]) / float(n),
            rejected_rate=float(rejected.loc[window]) / float(n),
            latency_p50_ms=None if q is None else float(q[0.5]),
            latency_p95_ms=None if q is None else float(q[0.95]),
            latency_p99_ms=None if q is None else float(q[0.99]),
            bad_latencies=int(bad.get(window, 0)),
        )
    return out


def process_health(samples: pd.DataFrame, window_index: Any) -> dict[int, ProcessHealth]:
    """Return each window's ``ProcessHealth`` from process samples (see health_sampler)."""
    import numpy as np
    import pandas as pd

    if len(samples) == 0:
        return {}
    work = pd.DataFrame(
        {
            "window": np.asarray(window_index, dtype=np.int64),
            "cpu": pd.to_numeric(samples["cpu_percent"], errors="coerce").to_numpy(np.float64),
            "rss": pd.to_numeric(samples["memory_rss_bytes"], errors="coerce").to_numpy(np.float64),
        }
    )
    grouped = work.groupby("window").agg(
        samples=("cpu", "size"), cpu=("cpu", "mean"), rss=("rss", "max")
    )
    out: dict[int, ProcessHealth] = {}
    for window, row in grouped.iterrows():
        cpu, rss = float(row["cpu"]), float(row["rss"])
        out[int(window)] = ProcessHealth(
            samples=int(row["samples"]),
            cpu_percent=cpu if np.isfinite(cpu) else None,
            memory_rss_bytes=int(rss) if np.isfinite(rss) else None,
        )
    return out
