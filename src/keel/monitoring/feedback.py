"""Ground truth for logged predictions: ``log_feedback`` and the feedback segments.

Feedback names a logged request by the id its answer carried (``Keel-Request-Id`` header,
OIP ``id``) and a row of it, and gives the true value: a number (``target``) or a string
label (``target_label``). It is written as Parquet segments beside the predictions
(``monitoring/feedback/deployment=<name>/hour=<hour>/``; the hour is when the feedback
arrived) and joined by ``read_predictions`` on (request_id, row), the latest feedback of a
row winning. Locally the segment is written at once; through a Keel server (an
``http(s)://`` tracking URI) it is POSTed to ``/api/v1/deployments/<name>/feedback``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import pyarrow as pa

    from keel.stores import Stores

__all__ = ["MAX_FEEDBACK", "FeedbackItem", "check_feedback", "log_feedback", "write_feedback"]

MAX_FEEDBACK = 100_000
MAX_LABEL = 10_000
MAX_ROW = 2**31 - 1
# (request_id, row, numeric target or None, string label or None)
FeedbackItem = tuple[str, int, float | None, str | None]


def _request_id(value: object, where: str) -> str:
    from keel.monitoring.prediction_serving import MAX_REQUEST_ID

    if not isinstance(value, str) or not value or len(value) > MAX_REQUEST_ID:
        raise InvalidInput(
            f"{where}: a request id is a non-empty string of at most {MAX_REQUEST_ID} "
            f"characters (the Keel-Request-Id a prediction answered with), not {value!r:.60}"
        )
    if not value.isprintable():
        raise InvalidInput(f"{where}: request id {value!r:.60} holds unprintable characters")
    return value


def _row(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInput(f"{where}: a row is an integer index >= 0, not {value!r:.40}")
    row = int(value)
    if not 0 <= row <= MAX_ROW:
        raise InvalidInput(f"{where}: row {row} is out of range (0 to {MAX_ROW})")
    return row


def _target(value: object, where: str) -> tuple[float | None, str | None]:
    if isinstance(value, str):
        if len(value) > MAX_LABEL:
            raise InvalidInput(f"{where}: a label is at most {MAX_LABEL} characters")
        return None, value
    if isinstance(value, bool):
        return float(value), None
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInput(f"{where}: target {value!r} is not a finite number")
        return number, None
    raise InvalidInput(
        f"{where}: a target is a number or a string label, not {type(value).__name__} {value!r:.40}"
    )


def _sequence(value: object) -> bool:
    import numpy as np

    return isinstance(value, list | tuple) or (isinstance(value, np.ndarray) and value.ndim == 1)


def check_feedback(request_id: object, target: object, row: object = 0) -> list[FeedbackItem]:
    """The feedback items one call gives: one (scalars) or many (equal-length sequences,
    ``row`` a sequence too or one row for all); ``InvalidInput`` names the bad item."""
    if not _sequence(request_id):
        if _sequence(target) or _sequence(row):
            raise InvalidInput(
                "give request_id, target and row all as scalars, or request_id and target "
                "as lists of equal length (row a list of that length or one integer)"
            )
        number, label = _target(target, "target")
        return [(_request_id(request_id, "request_id"), _row(row, "row"), number, label)]
    ids = list(request_id)  # type: ignore[call-overload]
    if not _sequence(target) or len(target) != len(ids):  # type: ignore[arg-type]
        raise InvalidInput(
            f"{len(ids)} request ids need a list of {len(ids)} targets, not {type(target).__name__}"
        )
    targets = list(target)  # type: ignore[call-overload]
    rows = list(row) if _sequence(row) else [row] * len(ids)  # type: ignore[call-overload]
    if len(rows) != len(ids):
        raise InvalidInput(f"{len(ids)} request ids need {len(ids)} rows, not {len(rows)}")
    if not ids:
        raise InvalidInput("no feedback given: the request id list is empty")
    if len(ids) > MAX_FEEDBACK:
        raise InvalidInput(f"at most {MAX_FEEDBACK} feedback rows per call, not {len(ids)}")
    items = []
    for i, (rid, r, t) in enumerate(zip(ids, rows, targets, strict=True)):
        where = f"feedback[{i}]"
        number, label = _target(_plain(t), where)
        items.append((_request_id(_plain(rid), where), _row(_plain(r), where), number, label))
    return items


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # a numpy scalar: its Python value
    return item() if callable(item) and not isinstance(value, str | bytes) else value


def feedback_table(deployment: str, items: Sequence[FeedbackItem], time_ms: int) -> pa.Table:
    """The feedback rows of ``items`` as an Arrow table, all arriving at ``time_ms``."""
    import pyarrow as pa

    n = len(items)
    return pa.table(
        {
            "request_id": pa.array([i[0] for i in items], pa.string()),
            "row": pa.array([i[1] for i in items], pa.int32()),
            "deployment": pa.array([deployment] * n, pa.string()),
            "time_ms": pa.array([time_ms] * n, pa.int64()),
            "target": pa.array([i[2] for i in items], pa.float64()),
            "target_label": pa.array([i[3] for i in items], pa.string()),
        }
    )


def write_feedback(stores: Stores, deployment: str, items: Sequence[FeedbackItem]) -> int:
    """Write ``items`` as one feedback segment of ``deployment`` in ``stores``' artifact root;
    return the rows written. ``deployment`` is a deployment of ``stores`` or a name
    predictions were logged under (``keel serve`` logs under the model's): ``NotFound``
    otherwise."""
    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.prediction_serving import now_ms
    from keel.monitoring.prediction_store import FEEDBACK, PREDICTIONS, hour_of, log_root

    deployment = check_deployment_name(deployment)
    root = log_root(stores)
    try:
        stores.deployments.get_deployment(deployment)
    except NotFound:
        if not root.has(PREDICTIONS, deployment):
            raise NotFound(
                f"deployment {deployment!r} does not exist and no predictions are logged "
                "under that name; give the deployment (or the model keel serve served)"
            ) from None
    arrived = now_ms()
    table = feedback_table(deployment, items, arrived)
    root.write(FEEDBACK, deployment, hour_of(arrived), table)
    return len(items)


def log_feedback(
    deployment: str,
    request_id: str | Sequence[str],
    target: float | str | Sequence[float | str],
    *,
    row: int | Sequence[int] = 0,
    stores: Stores | None = None,
) -> int:
    """Record the ground truth of logged predictions; return the number of rows recorded.

    One: ``log_feedback("churn-prod", request_id, 1.0)`` (``row`` picks a row of a
    many-row request). Many: equal-length lists (or arrays) of request ids and targets,
    with ``row`` a list too or one row for all. A target is a number or a string label.
    ``NotFound`` for an unknown deployment, ``InvalidInput`` naming a bad item.
    """
    from keel.deploy.entities import check_deployment_name

    deployment = check_deployment_name(deployment)
    items = check_feedback(request_id, target, row)
    if stores is None:
        from keel.stores import current_stores

        stores = current_stores()
    http = getattr(stores.tracking, "http", None)
    if http is not None:
        from keel.client.feedback import RestFeedback

        return RestFeedback(http).log(deployment, items)
    return write_feedback(stores, deployment, items)
