"""REST client of prediction feedback: ``POST /api/v1/deployments/{name}/feedback``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from keel.errors import KeelError

if TYPE_CHECKING:
    from keel.client.http import KeelHttp
    from keel.monitoring.feedback import FeedbackItem

__all__ = ["RestFeedback"]

# Items per request: keeps a body well under the server's limit whatever the labels hold.
CHUNK = 10_000


class RestFeedback:
    """Sends feedback to a Keel server, which writes it beside its prediction log."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def log(self, deployment: str, items: Sequence[FeedbackItem]) -> int:
        """POST ``items`` (checked already) in chunks; return the rows the server wrote."""
        written = 0
        path = f"/api/v1/deployments/{quote(deployment, safe='')}/feedback"
        for start in range(0, len(items), CHUNK):
            body = {
                "feedback": [
                    {"request_id": rid, "row": row, "target": label if number is None else number}
                    for rid, row, number, label in items[start : start + CHUNK]
                ]
            }
            answer = self.http.request("POST", path, json=body)
            if not isinstance(answer, dict) or not isinstance(answer.get("written"), int):
                raise KeelError(f"the Keel server answered {path} with {answer!r:.100}")
            written += answer["written"]
        return written
