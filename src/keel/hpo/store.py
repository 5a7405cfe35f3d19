"""The studies store interface: numbered Optuna journal entries per study, by backend.

A study's journal is an append-only sequence of JSON objects (Optuna's journal
operations) numbered from 0. ``append_logs`` gives a batch consecutive numbers, atomically
and in commit order, so every process reading from ``n`` sees the same sequence. The SQL
store (``keel.hpo.sql_store``) and the REST store (``keel.client.hpo``) implement it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from keel.errors import IntegrityError, InvalidInput

__all__ = [
    "MAX_LOGS_PER_APPEND",
    "MAX_LOG_BYTES",
    "MAX_READ",
    "StudyInfo",
    "StudyStore",
    "check_from",
    "check_study_name",
    "decode_log",
    "encode_logs",
]

MAX_LOGS_PER_APPEND = 1000
MAX_LOG_BYTES = 1 << 20  # one journal entry; a trial's params are far smaller
MAX_READ = 10_000  # entries one read returns at most (the caller reads on from there)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class StudyInfo:
    """A study as the store knows it: its name, journal length and times (ms)."""

    name: str
    log_count: int
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """Return the study as a JSON-able dict."""
        return {
            "name": self.name,
            "log_count": self.log_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudyInfo:
        """Return the study ``to_dict`` gave."""
        return cls(d["name"], int(d["log_count"]), int(d["created_at"]), int(d["updated_at"]))


def check_study_name(name: Any) -> str:
    """Return ``name`` if it is a valid study name, or raise ``InvalidInput``."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        shown = name if isinstance(name, str) else type(name).__name__
        raise InvalidInput(
            f"invalid study name {str(shown)[:200]!r}: use 1-128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )
    return name


def check_from(log_number_from: Any) -> int:
    """Return ``log_number_from`` if it is a journal position (an int >= 0), or raise."""
    if type(log_number_from) is not int or not 0 <= log_number_from < 1 << 31:
        raise InvalidInput(
            f"a journal position must be an integer from 0, got {log_number_from!r:.100}"
        )
    return log_number_from


def encode_logs(study: str, logs: Sequence[Any]) -> list[str]:
    """Return each journal entry as JSON text, or raise ``InvalidInput`` naming the bad one."""
    if isinstance(logs, str | bytes) or not isinstance(logs, Sequence):
        raise InvalidInput(f"study {study!r}: journal entries must be a list of objects")
    if not 1 <= len(logs) <= MAX_LOGS_PER_APPEND:
        raise InvalidInput(
            f"study {study!r}: append 1 to {MAX_LOGS_PER_APPEND} journal entries at a time, "
            f"not {len(logs)}"
        )
    texts = []
    for i, log in enumerate(logs):
        if not isinstance(log, dict):
            raise InvalidInput(f"study {study!r}: journal entry {i} is not an object")
        try:
            text = orjson.dumps(log).decode()
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise InvalidInput(f"study {study!r}: journal entry {i} is not JSON: {exc}") from None
        if len(text) > MAX_LOG_BYTES:
            raise InvalidInput(
                f"study {study!r}: journal entry {i} is {len(text)} bytes, over {MAX_LOG_BYTES}"
            )
        # What decode_log would call corrupt is refused here, so a client cannot store an
        # entry that makes the study unreadable for everyone after it.
        op_code = log.get("op_code")
        if not isinstance(op_code, int) or isinstance(op_code, bool):  # IntEnum is fine
            raise InvalidInput(
                f"study {study!r}: journal entry {i} is not an Optuna journal operation "
                "(no integer op_code)"
            )
        texts.append(text)
    return texts


def decode_log(study: str, number: int, text: str | bytes) -> dict[str, Any]:
    """Return a stored journal entry, or raise ``IntegrityError`` if it is corrupt."""
    try:
        log = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise IntegrityError(
            f"study {study!r}: journal entry {number} is corrupt (not JSON: {exc}); the study "
            "cannot be read past it"
        ) from None
    if not isinstance(log, dict) or not isinstance(log.get("op_code"), int):
        raise IntegrityError(
            f"study {study!r}: journal entry {number} is corrupt (not an Optuna journal "
            "operation); the study cannot be read past it"
        )
    return log


class StudyStore(ABC):
    """Where studies' journals live: the metadata database or a Keel server."""

    @abstractmethod
    def append_logs(self, study: str, logs: Sequence[dict[str, Any]]) -> int:
        """Append ``logs`` to the study's journal (made on first use); return the first's
        number. The batch gets consecutive numbers, atomically."""

    @abstractmethod
    def append_and_read(
        self, study: str, logs: Sequence[dict[str, Any]], log_number_from: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Append ``logs`` as ``append_logs`` does; return the first one's number and up to
        :data:`MAX_READ` entries from ``log_number_from`` on, read in the same transaction
        (so they include ``logs``). Saves Optuna's read after each write a round trip."""

    @abstractmethod
    def read_logs(
        self, study: str, log_number_from: int, limit: int = MAX_READ
    ) -> list[dict[str, Any]]:
        """Return up to ``limit`` entries from number ``log_number_from`` on, in order
        (empty for a study with none); ``IntegrityError`` at a corrupt entry."""

    @abstractmethod
    def get_study(self, study: str) -> StudyInfo:
        """Return the study; ``NotFound`` if it has no journal."""

    @abstractmethod
    def list_studies(self) -> list[StudyInfo]:
        """Return every study, by name."""
