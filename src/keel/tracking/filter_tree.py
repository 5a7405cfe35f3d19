"""The run search language's parse tree, and the check every condition passes.

``keel.tracking.filter`` builds these from text; ``keel.tracking.filter_sql`` compiles them
(and checks hand-built trees again with :func:`check_comparison`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from keel.errors import InvalidInput
from keel.tracking.filter_lexer import IDENT

__all__ = [
    "ATTRIBUTES", "DATASET_FIELDS", "PLURAL", "And", "Comparison", "FilterExpr", "Key",
    "KeyKind", "Mismatch", "Or", "OrderKey", "Value", "check_comparison",
]  # fmt: skip

KeyKind = Literal["attribute", "dataset", "metric", "param", "tag"]
Value = str | Decimal | bool

# Run attributes by canonical name (a column of ``runs``) and value type.
ATTRIBUTES: dict[str, str] = {
    "run_id": "string", "name": "string", "status": "status", "start_time": "number",
    "end_time": "number", "user": "string", "source": "string", "git_commit": "string",
    "git_dirty": "bool", "parent_run_id": "string", "experiment_id": "string",
}  # fmt: skip
# What ``datasets.<field>`` can ask of a run's dataset inputs (MLflow's three).
DATASET_FIELDS = ("name", "digest", "context")
PLURAL = {
    "metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes",
    "dataset": "datasets",
}  # fmt: skip
_COMPARE = ("=", "!=", "<", "<=", ">", ">=")
_ORDERING = ("<", "<=", ">", ">=")

# Which operators each kind of key takes (is null / is not null work everywhere).
_OPS: dict[str, tuple[str, ...]] = {
    "metric": (*_COMPARE, "in", "not in"),
    "param": (*_COMPARE, "in", "not in", "like", "not like", "ilike", "not ilike"),
    "string": ("=", "!=", "in", "not in", "like", "not like", "ilike", "not ilike"),
    "number": (*_COMPARE, "in", "not in"),
    "bool": ("=", "!="),
}
_OPS["tag"] = _OPS["param"]
_OPS["status"] = _OPS["dataset"] = _OPS["string"]


@dataclass(frozen=True)
class Key:
    """What a condition or an order key looks at: an attribute, metric, param, tag, or a
    field of the run's dataset inputs."""

    kind: KeyKind
    name: str

    def __str__(self) -> str:
        name = self.name
        if not IDENT.fullmatch(name):
            name = "`" + name.replace("`", "``") + "`"
        return f"{PLURAL[self.kind]}.{name}"


@dataclass(frozen=True)
class Comparison:
    """One condition: ``key op value`` (``value`` is a tuple for in, None for is null)."""

    key: Key
    op: str
    value: Value | tuple[Value, ...] | None = None
    position: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    """All of ``items`` hold."""

    items: tuple[FilterExpr, ...]


@dataclass(frozen=True)
class Or:
    """At least one of ``items`` holds."""

    items: tuple[FilterExpr, ...]


FilterExpr = Comparison | And | Or


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` entry: a key and its direction."""

    key: Key
    ascending: bool = True


class Mismatch(InvalidInput):
    """A condition that does not fit its key; ``index`` names the value at fault."""

    def __init__(self, detail: str, index: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.index = detail, index


def check_comparison(cond: Comparison) -> Comparison:
    """Return ``cond`` with its value normalised, or raise ``InvalidInput`` if it is unsound.

    The parser calls this for every condition; ``compile_filter`` calls it again, so a
    hand-built tree gets the same checks.
    """
    key, op, value = cond.key, cond.op, cond.value
    if key.kind not in PLURAL or (key.kind != "attribute" and not key.name):
        raise Mismatch(f"invalid key {key!r}")
    if key.kind == "attribute" and key.name not in ATTRIBUTES:
        raise Mismatch(f"unknown attribute {key.name!r}")
    if key.kind == "dataset" and key.name not in DATASET_FIELDS:
        raise Mismatch(f"unknown dataset key {key.name!r}; use one of {DATASET_FIELDS}")
    vtype = ATTRIBUTES[key.name] if key.kind == "attribute" else key.kind
    if op in ("is null", "is not null"):
        return cond
    if op not in _OPS[vtype]:
        allowed = ", ".join((*_OPS[vtype], "is null", "is not null"))
        raise Mismatch(f"{key} does not support {op!r}; use one of {allowed}")
    values = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) != op.endswith("in") or not values:
        raise Mismatch(f"{op!r} needs {'a list of values' if op.endswith('in') else 'a value'}")
    want = {"metric": "a number", "number": "a number", "bool": "true or false"}.get(vtype)
    if vtype in ("param", "tag"):
        want = "a string" if "like" in op else "a number" if op in _ORDERING else None
    elif vtype in ("string", "status", "dataset"):
        want = "a string"
    for index, item in enumerate(values):
        ok = {
            "a number": isinstance(item, Decimal) and item.is_finite(),
            "a string": isinstance(item, str),
            "true or false": isinstance(item, bool)
            or (isinstance(item, str) and item.lower() in ("true", "false")),
            None: isinstance(item, str) or (isinstance(item, Decimal) and item.is_finite()),
        }[want]
        if not ok:
            found = repr(item) if isinstance(item, str) else str(item)
            needs = want or "a string or a number"
            raise Mismatch(f"{op!r} on {key} needs {needs}, found {found}", index)
    if vtype == "bool" and isinstance(value, str):
        return Comparison(key, op, value.lower() == "true", cond.position)
    if vtype == "status":
        low = tuple(str(v).lower() for v in values)
        return Comparison(key, op, low if op.endswith("in") else low[0], cond.position)
    return cond
