"""``POST /api/v1/deployments/{name}/feedback``: ground truth for logged predictions.

Body ``{"feedback": [{"request_id": str, "row": int (default 0), "target": number | str},
…]}``, at most ``MAX_BODY_BYTES`` and ``keel.monitoring.feedback.MAX_FEEDBACK`` items. The
body is read as bytes and checked as ``keel.log_feedback`` checks its arguments, so a bad
item is a 400 ``{"error_code", "message"}`` naming it (not a 422); an unknown deployment
is 404. With auth on it needs the editor role. Feedback is data, not a change of state:
it is written as a feedback segment beside the prediction log, not audited.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from keel.errors import InvalidInput
from keel.governance.auth import Role
from keel.server.auth import require

__all__ = ["MAX_BODY_BYTES", "router"]

MAX_BODY_BYTES = 16 * 1024 * 1024
router = APIRouter(tags=["monitoring"])
Name = Annotated[str, Path(min_length=1, max_length=128, description="deployment name")]


def _items(doc: Any) -> tuple[list[Any], list[Any], list[Any]]:
    if not isinstance(doc, dict) or not isinstance(doc.get("feedback"), list):
        raise InvalidInput(
            'the body is {"feedback": [{"request_id": ..., "row": 0, "target": ...}, ...]}'
        )
    extra = sorted(set(doc) - {"feedback"})
    if extra:
        raise InvalidInput(f"unknown field(s) {extra} in the body; only 'feedback' is read")
    ids, rows, targets = [], [], []
    for i, item in enumerate(doc["feedback"]):
        if not isinstance(item, dict) or "request_id" not in item or "target" not in item:
            raise InvalidInput(f"feedback[{i}] is an object with request_id, target and row")
        unknown = sorted(set(item) - {"request_id", "row", "target"})
        if unknown:
            raise InvalidInput(f"feedback[{i}] has unknown field(s) {unknown}")
        ids.append(item["request_id"])
        rows.append(item.get("row", 0))
        targets.append(item["target"])
    return ids, rows, targets


_BODY_SCHEMA = {
    "type": "object",
    "required": ["feedback"],
    "additionalProperties": False,
    "properties": {
        "feedback": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["request_id", "target"],
                "additionalProperties": False,
                "properties": {
                    "request_id": {"type": "string", "minLength": 1, "maxLength": 256},
                    "row": {"type": "integer", "minimum": 0, "default": 0},
                    "target": {"oneOf": [{"type": "number"}, {"type": "string"}]},
                },
            },
        }
    },
}


@router.post(
    "/deployments/{name}/feedback",
    dependencies=[require(Role.EDITOR)],
    responses={400: {"description": "bad feedback"}, 404: {"description": "no such deployment"}},
    # the body is read as bytes (checked as keel.log_feedback checks it); its schema here
    # documents it
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _BODY_SCHEMA}},
        }
    },
)
async def post_feedback(name: Name, request: Request) -> dict[str, int]:
    """Record ground truth for a deployment's logged predictions; answer the rows written."""
    from keel.deploy.entities import check_deployment_name
    from keel.monitoring.feedback import check_feedback, write_feedback
    from keel.serving.rest import read_body

    name = check_deployment_name(name)
    raw = await read_body(request, MAX_BODY_BYTES)
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from None
    ids, rows, targets = _items(doc)
    items = check_feedback(ids, targets, rows)
    written = await run_in_threadpool(write_feedback, request.app.state.stores, name, items)
    return {"written": written}
