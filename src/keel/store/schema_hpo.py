"""The hpo tables (revision 0012): hyperparameter-search studies (Optuna journal).

Declared on the metadata database's one ``metadata`` (``keel.store.schema``).
"""

from __future__ import annotations

__all__ = ["HPO_TABLES"]

HPO_TABLES: tuple[object, ...] = ()
