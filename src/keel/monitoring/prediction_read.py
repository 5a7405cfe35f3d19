"""``read_predictions``: a deployment's prediction log as a DataFrame, with its feedback.

DuckDB reads the Parquet segments directly (``union_by_name``: segments of different
versions may carry different input columns), listing only the hour partitions the time
window touches; feedback (which arrives later) is read from the window's first hour on.
A non-local artifact root (s3://…) is read through its fsspec filesystem registered with
DuckDB, so no DuckDB extension is downloaded.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring.prediction_store import LogRoot
    from keel.stores import Stores

__all__ = ["read_feedback", "read_predictions"]

_BASE = [
    "request_id",
    "row",
    "deployment",
    "model",
    "version",
    "time_ms",
    "latency_ms",
    "status",
    "error",
    "sampled",
]
_FEEDBACK = ["target", "target_label", "feedback_time_ms"]


def _ms(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidInput(
                f"{name} is a naive datetime ({value.isoformat()}); give an aware one "
                "(e.g. datetime.now(UTC)) or milliseconds since the epoch"
            )
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(
            f"{name} is milliseconds since the epoch (int) or an aware datetime, "
            f"not {type(value).__name__} {value!r:.60}"
        )
    if not 0 <= value < 1 << 53:
        raise InvalidInput(f"{name} {value} is out of range for milliseconds since the epoch")
    return value


def _window(start: object, end: object) -> tuple[int | None, int | None]:
    lo, hi = _ms(start, "start"), _ms(end, "end")
    if lo is not None and hi is not None and hi < lo:
        raise InvalidInput(f"end ({hi}) is before start ({lo}); the window is [start, end)")
    return lo, hi


def _sql_list(urls: list[str]) -> str:
    return "[" + ", ".join("'" + u.replace("'", "''") + "'" for u in urls) + "]"


def _connect(root: LogRoot) -> Any:
    import duckdb

    con = duckdb.connect()
    if not root.local:
        con.register_filesystem(root.fs)
    return con


def read_predictions(
    deployment: str,
    *,
    start: int | datetime | None = None,
    end: int | datetime | None = None,
    with_feedback: bool = True,
    stores: Stores | None = None,
) -> pd.DataFrame:
    """Return the deployment's logged rows with ``time_ms`` in ``[start, end)``.

    ``start``/``end`` are ms since the epoch or aware datetimes (either may be None: open).
    One row per predicted row (see ``keel.monitoring.prediction_log``); ``with_feedback``
    left-joins the latest feedback of each (request_id, row): ``target``,
    ``target_label``, ``feedback_time_ms``. Sorted by time_ms, request_id, row.
    """
    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.prediction_store import FEEDBACK, PREDICTIONS, hour_of, log_root

    deployment = check_deployment_name(deployment)
    if not isinstance(with_feedback, bool):
        raise InvalidInput(f"with_feedback is True or False, not {with_feedback!r:.40}")
    lo, hi = _window(start, end)
    root = log_root(stores)
    first = None if lo is None else hour_of(lo)
    last = None if hi is None else hour_of(max(hi - 1, 0))
    empty = lo is not None and hi is not None and hi <= lo
    files = [] if empty else root.files(PREDICTIONS, deployment, first, last)
    if not files:
        return _empty(with_feedback)
    where = []
    if lo is not None:
        where.append(f"time_ms >= {lo}")
    if hi is not None:
        where.append(f"time_ms < {hi}")
    condition = " AND ".join(where) or "TRUE"
    predictions = (
        f"SELECT * FROM read_parquet({_sql_list([root.url_of(f) for f in files])}, "
        f"union_by_name = true, hive_partitioning = false) WHERE {condition}"
    )
    order = 'ORDER BY p.time_ms, p.request_id, p."row"'
    feedback_files = root.files(FEEDBACK, deployment, first, None) if with_feedback else []
    con = _connect(root)
    try:
        if not with_feedback:
            return con.sql(f"SELECT * FROM ({predictions}) p {order}").df()
        if not feedback_files:
            return con.sql(
                f"SELECT p.*, CAST(NULL AS DOUBLE) AS target, CAST(NULL AS VARCHAR) AS "
                f"target_label, CAST(NULL AS BIGINT) AS feedback_time_ms "
                f"FROM ({predictions}) p {order}"
            ).df()
        feedback = _latest_feedback(root, feedback_files)
        return con.sql(
            f"SELECT p.*, f.target, f.target_label, f.feedback_time_ms "
            f"FROM ({predictions}) p LEFT JOIN ({feedback}) f "
            f'ON p.request_id = f.request_id AND p."row" = f."row" {order}'
        ).df()
    finally:
        con.close()


def _latest_feedback(root: LogRoot, files: list[str]) -> str:
    return (
        'SELECT request_id, "row", target, target_label, time_ms AS feedback_time_ms '
        f"FROM read_parquet({_sql_list([root.url_of(f) for f in files])}, "
        "union_by_name = true, hive_partitioning = false) "
        'QUALIFY row_number() OVER (PARTITION BY request_id, "row" ORDER BY time_ms DESC) = 1'
    )


def read_feedback(deployment: str, *, stores: Stores | None = None) -> pd.DataFrame:
    """Return every feedback row logged for ``deployment`` (all of them, oldest first)."""
    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.prediction_store import FEEDBACK, log_root

    deployment = check_deployment_name(deployment)
    root = log_root(stores)
    files = root.files(FEEDBACK, deployment)
    if not files:
        import pandas as pd

        return pd.DataFrame(
            columns=["request_id", "row", "deployment", "time_ms", "target", "target_label"]
        )
    con = _connect(root)
    try:
        return con.sql(
            f"SELECT * FROM read_parquet({_sql_list([root.url_of(f) for f in files])}, "
            'union_by_name = true, hive_partitioning = false) ORDER BY time_ms, request_id, "row"'
        ).df()
    finally:
        con.close()


def _empty(with_feedback: bool) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=_BASE + (_FEEDBACK if with_feedback else []))
