"""Promotion: moving a model version into a named environment through its gates.

Names load lazily (PEP 562), so importing ``keel.promotion`` costs nothing until used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.promotion.api import approve_promotion, list_approvals, promote, promotion_history
    from keel.promotion.entities import Approval, GateResult, PromotionResult
    from keel.promotion.store import PromotionStore

__all__ = [
    "Approval",
    "GateResult",
    "PromotionResult",
    "PromotionStore",
    "approve_promotion",
    "list_approvals",
    "promote",
    "promotion_history",
]

_EXPORTS = {
    "Approval": "keel.promotion.entities",
    "GateResult": "keel.promotion.entities",
    "PromotionResult": "keel.promotion.entities",
    "PromotionStore": "keel.promotion.store",
    "approve_promotion": "keel.promotion.api",
    "list_approvals": "keel.promotion.api",
    "promote": "keel.promotion.api",
    "promotion_history": "keel.promotion.api",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'keel.promotion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
