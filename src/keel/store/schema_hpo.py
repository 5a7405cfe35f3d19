"""The hpo tables (revision 0012): hyperparameter-search studies as Optuna journals.

``hpo_studies`` has a row per study with how many journal entries it holds;
``hpo_journal`` holds the entries themselves, numbered from 0 per study. An append
raises ``log_count`` first, so the row lock (PostgreSQL) or the write lock (SQLite) makes
concurrent appends take consecutive, gap-free numbers in commit order. Declared on the
metadata database's one ``metadata`` (``keel.store.schema``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table, Text

from keel.store.schema import metadata

__all__ = ["HPO_TABLES", "hpo_journal", "hpo_studies"]

STUDY_NAME = String(128)

hpo_studies = Table(
    "hpo_studies",
    metadata,
    Column("name", STUDY_NAME, primary_key=True),
    Column("log_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

hpo_journal = Table(
    "hpo_journal",
    metadata,
    Column(
        "study",
        STUDY_NAME,
        ForeignKey("hpo_studies.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("number", Integer, primary_key=True),
    # one Optuna journal operation as JSON
    Column("log", Text, nullable=False),
)

HPO_TABLES: tuple[object, ...] = (hpo_studies, hpo_journal)
