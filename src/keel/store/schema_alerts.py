"""The alerts tables (revision 0010): alert rules, alert states and their events.

Declared on the metadata database's one ``metadata`` (``keel.store.schema``).
"""

from __future__ import annotations

__all__ = ["ALERTS_TABLES"]

ALERTS_TABLES: tuple[object, ...] = ()
