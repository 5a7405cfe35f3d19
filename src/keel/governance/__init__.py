"""Governance: the audit log, the acting identity, users, tokens and roles.

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
    from keel.governance.auth import (
        AuthStore,
        NewToken,
        Principal,
        Role,
        TokenInfo,
        User,
        auth_store,
    )
    from keel.governance.identity import acting_as, current_actor

__all__ = [
    "AuditEntry",
    "AuditProblem",
    "AuditStore",
    "AuthStore",
    "NewToken",
    "Principal",
    "Role",
    "TokenInfo",
    "User",
    "VerifyResult",
    "acting_as",
    "audit_log",
    "auth_store",
    "current_actor",
    "verify_audit_log",
]

_EXPORTS = {
    "AuditEntry": "keel.governance.audit",
    "AuditProblem": "keel.governance.audit",
    "AuditStore": "keel.governance.audit",
    "AuthStore": "keel.governance.auth",
    "NewToken": "keel.governance.auth",
    "Principal": "keel.governance.auth",
    "Role": "keel.governance.auth",
    "TokenInfo": "keel.governance.auth",
    "User": "keel.governance.auth",
    "VerifyResult": "keel.governance.audit",
    "acting_as": "keel.governance.identity",
    "audit_log": "keel.governance.audit",
    "auth_store": "keel.governance.auth",
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
