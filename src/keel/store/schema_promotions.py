"""The promotions tables (revision 0011): environments' promotions and their approvals.

Declared on the metadata database's one ``metadata`` (``keel.store.schema``).
"""

from __future__ import annotations

__all__ = ["PROMOTIONS_TABLES"]

PROMOTIONS_TABLES: tuple[object, ...] = ()
