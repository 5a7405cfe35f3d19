"""Governance: the audit log and the acting identity (auth, signing and privacy come later).

Names load lazily (PEP 562), so importing ``keel.governance`` costs nothing until used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.governance.audit import (
        AuditEntry,
        AuditProblem,
        AuditStore,
        VerifyResult,
        audit_log,
        verify_audit_log,
    )
    from keel.governance.identity import acting_as, current_actor

__all__ = [
    "AuditEntry",
    "AuditProblem",
    "AuditStore",
    "VerifyResult",
    "acting_as",
    "audit_log",
    "current_actor",
    "verify_audit_log",
]

_EXPORTS = {
    "AuditEntry": "keel.governance.audit",
    "AuditProblem": "keel.governance.audit",
    "AuditStore": "keel.governance.audit",
    "VerifyResult": "keel.governance.audit",
    "acting_as": "keel.governance.identity",
    "audit_log": "keel.governance.audit",
    "current_actor": "keel.governance.identity",
    "verify_audit_log": "keel.governance.audit",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.governance' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
