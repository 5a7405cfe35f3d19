"""Hyperparameter search on Optuna, with each study stored in Keel's metadata database.

    study = keel.create_study("rf-depth", direction="maximize")
    result = keel.tune(objective, n_trials=50, n_jobs=4, study=study)
    result.best_params                  # {"max_depth": 7, ...}

Every trial is a nested run; a study's journal lives in Keel's database (SQLite,
PostgreSQL) or behind a Keel server, so trials run in parallel processes or on Ray. The
names below load their modules on first use (Optuna is imported only when used).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "KeelJournalBackend",
    "StudyInfo",
    "StudyStore",
    "TuneResult",
    "create_study",
    "list_studies",
    "load_study",
    "tune",
    "tuning_step",
]

_EXPORTS = {
    "KeelJournalBackend": "keel.hpo.journal",
    "StudyInfo": "keel.hpo.store",
    "StudyStore": "keel.hpo.store",
    "TuneResult": "keel.hpo.search",
    "create_study": "keel.hpo.journal",
    "list_studies": "keel.hpo.journal",
    "load_study": "keel.hpo.journal",
    "tune": "keel.hpo.search",
    "tuning_step": "keel.hpo.step",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
