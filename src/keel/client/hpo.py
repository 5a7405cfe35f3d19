"""The studies store over HTTP: a study's journal appended and read through a Keel server.

Two calls carry an Optuna journal: ``POST /api/v1/hpo/studies/{name}/logs`` appends a
batch (the server numbers it) and ``GET …/logs?from=N`` reads on from entry ``N``, so
trials on any machine that reaches the server share one study.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keel.client.http import KeelHttp
from keel.errors import IntegrityError
from keel.hpo.store import (
    MAX_READ,
    StudyInfo,
    StudyStore,
    check_from,
    check_study_name,
    encode_logs,
)

__all__ = ["RestStudyStore"]

_BASE = "/api/v1/hpo/studies"


class RestStudyStore(StudyStore):
    """The studies of a Keel server, through its REST API."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http

    def append_logs(self, study: str, logs: Sequence[dict[str, Any]]) -> int:
        check_study_name(study)
        encode_logs(study, logs)  # the same InvalidInput as the SQL store, before sending
        body = self.http.request("POST", f"{_BASE}/{study}/logs", json={"logs": list(logs)})
        return int(body["first"])

    def append_and_read(
        self, study: str, logs: Sequence[dict[str, Any]], log_number_from: int
    ) -> tuple[int, list[dict[str, Any]]]:
        check_study_name(study)
        encode_logs(study, logs)
        start = check_from(log_number_from)
        body = self.http.request(
            "POST", f"{_BASE}/{study}/logs", json={"logs": list(logs), "read_from": start}
        )
        return int(body["first"]), self._checked(study, start, body)

    def read_logs(
        self, study: str, log_number_from: int, limit: int = MAX_READ
    ) -> list[dict[str, Any]]:
        check_study_name(study)
        start = check_from(log_number_from)
        params = {"from": start, "limit": max(1, min(int(limit), MAX_READ))}
        body = self.http.request("GET", f"{_BASE}/{study}/logs", params=params)
        return self._checked(study, start, body)

    @staticmethod
    def _checked(study: str, start: int, body: Any) -> list[dict[str, Any]]:
        logs = body.get("logs") if isinstance(body, dict) else None
        if not isinstance(logs, list):
            raise IntegrityError(f"study {study!r}: the server's journal answer has no logs")
        # Checked as stored entries are: a proxy or server bug must not reach Optuna's replay.
        for i, log in enumerate(logs):
            if not isinstance(log, dict) or not isinstance(log.get("op_code"), int):
                raise IntegrityError(
                    f"study {study!r}: journal entry {start + i} from the server is not an "
                    "Optuna journal operation"
                )
        return logs

    def get_study(self, study: str) -> StudyInfo:
        check_study_name(study)
        return StudyInfo.from_dict(self.http.request("GET", f"{_BASE}/{study}"))

    def list_studies(self) -> list[StudyInfo]:
        body = self.http.request("GET", _BASE)
        return [StudyInfo.from_dict(d) for d in body["studies"]]
