"""Studies in the metadata database (SQLite or PostgreSQL), one SQL implementation.

An append first raises the study's ``log_count`` with ``UPDATE … RETURNING``: on
PostgreSQL that row lock queues concurrent appenders of one study until the holder
commits, on SQLite the write transaction (``BEGIN IMMEDIATE``) queues every writer; either
way each batch takes the next numbers, and a reader never sees a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from keel.errors import IntegrityError, NotFound
from keel.hpo.store import (
    MAX_READ,
    StudyInfo,
    StudyStore,
    check_from,
    check_study_name,
    decode_log,
    encode_logs,
)
from keel.store.clock import now_ms
from keel.store.schema_hpo import hpo_journal, hpo_studies

if TYPE_CHECKING:
    from keel.store.database import Database

__all__ = ["SqlStudyStore"]

_S, _J = hpo_studies.c, hpo_journal.c


def _info(row: Any) -> StudyInfo:
    return StudyInfo(row.name, row.log_count, row.created_at, row.updated_at)


class SqlStudyStore(StudyStore):
    """The studies of one metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append_logs(self, study: str, logs: Sequence[dict[str, Any]]) -> int:
        texts = encode_logs(check_study_name(study), logs)
        with self.db.write() as conn:
            return self._append(conn, study, texts)

    def append_and_read(
        self, study: str, logs: Sequence[dict[str, Any]], log_number_from: int
    ) -> tuple[int, list[dict[str, Any]]]:
        texts = encode_logs(check_study_name(study), logs)
        start = check_from(log_number_from)
        with self.db.write() as conn:
            first = self._append(conn, study, texts)
            # The study's row lock is held, so every earlier append is committed: the
            # entries from ``start`` through ours have no gap.
            return first, self._read(conn, study, start, MAX_READ)

    def _append(self, conn: Connection, study: str, texts: list[str]) -> int:
        n, now = len(texts), now_ms()
        bump = (
            update(hpo_studies)
            .where(_S.name == study)
            .values(log_count=_S.log_count + n, updated_at=now)
            .returning(_S.log_count)
        )
        end = conn.execute(bump).scalar()
        if end is None:  # the study's first entries
            row = {"name": study, "log_count": 0, "created_at": now, "updated_at": now}
            self.db.upsert(conn, hpo_studies, [row], ["name"], [])
            end = conn.execute(bump).scalar_one()
        first = end - n
        conn.execute(
            insert(hpo_journal),
            [{"study": study, "number": first + i, "log": t} for i, t in enumerate(texts)],
        )
        return first

    def read_logs(
        self, study: str, log_number_from: int, limit: int = MAX_READ
    ) -> list[dict[str, Any]]:
        check_study_name(study)
        start = check_from(log_number_from)
        with self.db.read() as conn:
            return self._read(conn, study, start, max(1, min(int(limit), MAX_READ)))

    def _read(self, conn: Connection, study: str, start: int, limit: int) -> list[dict[str, Any]]:
        stmt = (
            select(_J.number, _J.log)
            .where(_J.study == study, _J.number >= start)
            .order_by(_J.number)
            .limit(limit)
        )
        logs = []
        for expected, (number, text) in enumerate(conn.execute(stmt), start):
            if number != expected:
                raise IntegrityError(
                    f"study {study!r}: journal entry {expected} is missing (the next stored "
                    f"one is {number}); the study cannot be read past it"
                )
            logs.append(decode_log(study, number, text))
        return logs

    def get_study(self, study: str) -> StudyInfo:
        check_study_name(study)
        with self.db.read() as conn:
            row = conn.execute(select(hpo_studies).where(_S.name == study)).first()
        if row is None:
            raise NotFound(f"no study named {study!r}; `keel hpo studies` lists them")
        return _info(row)

    def list_studies(self) -> list[StudyInfo]:
        with self.db.read() as conn:
            rows = conn.execute(select(hpo_studies).order_by(_S.name)).all()
        return [_info(r) for r in rows]
