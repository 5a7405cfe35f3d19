"""The run search language: filters like ``metrics.acc > 0.9 and params.model = 'rf'``.

Grammar (keywords are case-insensitive; ``and`` binds tighter than ``or``)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := primary ("and" primary)*
    primary    := "(" or_expr ")" | comparison
    comparison := key ("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") value
                | key ["not"] "in" "(" value ("," value)* ")"
                | key ["not"] ("like" | "ilike") string
                | key "is" ["not"] "null"
    key        := prefix "." (name | `back ticked` | "quoted") | attribute
    prefix     := metrics | metric | params | param | tags | tag
                | attributes | attribute | attr | run
    value      := 'string' | "string" | number | true | false

Parsing needs no SQLAlchemy; ``compile_filter`` and ``compile_order_by`` (in
``keel.tracking.filter_sql``) turn the result into SQL on ``keel.store.schema.runs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import InvalidInput
from keel.tracking.filter_lexer import IDENT, KEYWORDS, Token, syntax_error, tokenize

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

__all__ = [
    "ATTRIBUTES", "MAX_FILTER_LENGTH", "MAX_NESTING", "And", "Comparison", "FilterExpr", "Key",
    "Or", "OrderKey", "check_comparison", "compile_filter", "compile_order_by", "parse_filter",
    "parse_order_by",
]  # fmt: skip

MAX_FILTER_LENGTH = 10_000
MAX_NESTING = 50

KeyKind = Literal["attribute", "metric", "param", "tag"]
Value = str | Decimal | bool

# Run attributes by canonical name (a column of ``runs``) and value type.
ATTRIBUTES: dict[str, str] = {
    "run_id": "string", "name": "string", "status": "status", "start_time": "number",
    "end_time": "number", "user": "string", "source": "string", "git_commit": "string",
    "git_dirty": "bool", "parent_run_id": "string", "experiment_id": "string",
}  # fmt: skip
_ATTRIBUTE_ALIASES = {"run_name": "name"}
_PREFIXES: dict[str, KeyKind] = {
    "metrics": "metric", "metric": "metric", "params": "param", "param": "param",
    "tags": "tag", "tag": "tag", "attributes": "attribute", "attribute": "attribute",
    "attr": "attribute", "run": "attribute",
}  # fmt: skip
_PLURAL = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}
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
_OPS["status"] = _OPS["string"]


@dataclass(frozen=True)
class Key:
    """What a condition or an order key looks at: an attribute, metric, param or tag."""

    kind: KeyKind
    name: str

    def __str__(self) -> str:
        name = self.name
        if not IDENT.fullmatch(name):
            name = "`" + name.replace("`", "``") + "`"
        return f"{_PLURAL[self.kind]}.{name}"


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


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text, self.what = text, what
        if len(text) > MAX_FILTER_LENGTH:
            raise InvalidInput(f"{what} is {len(text)} characters; at most {MAX_FILTER_LENGTH}")
        if "\x00" in text:  # no database stores NUL in text
            raise self.error(text.index("\x00") + 1, "unexpected NUL character")
        self.tokens = tokenize(text, what)
        self.i = 0
        self.depth = 0

    # -- errors and tokens ----------------------------------------------------------------
    def error(self, pos: int, detail: str) -> InvalidInput:
        return syntax_error(self.text, self.what, pos, detail)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "ident" and self.tok.text.lower() in words

    def found(self) -> str:
        tok = self.tok
        if tok.kind in ("end", "string", "number"):
            return f"{tok.kind} {tok.text}" if tok.text else "end of input"
        if tok.kind == "ident" and tok.text.lower() in KEYWORDS:
            return f"keyword '{tok.text}'"
        return f"{'name ' if tok.kind in ('ident', 'quoted') else ''}{tok.text!r}"

    def expected(self, what: str) -> InvalidInput:
        return self.error(self.tok.pos, f"expected {what}, found {self.found()}")

    # -- grammar --------------------------------------------------------------------------
    def parse_or(self) -> FilterExpr:
        items = [self.parse_and()]
        while self.is_word("or"):
            self.advance()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def parse_and(self) -> FilterExpr:
        items = [self.parse_primary()]
        while self.is_word("and"):
            self.advance()
            items.append(self.parse_primary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def parse_primary(self) -> FilterExpr:
        if self.tok.kind != "(":
            return self.parse_comparison()
        opening = self.advance()
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(opening.pos, f"parentheses nest deeper than {MAX_NESTING} levels")
        inner = self.parse_or()
        if self.tok.kind != ")":
            raise self.expected(f"')' to close the '(' at position {opening.pos}, or 'and'/'or'")
        self.advance()
        self.depth -= 1
        return inner

    def parse_key(self) -> Key:
        tok = self.tok
        if tok.kind == "quoted":
            self.advance()
            return self._attribute(tok.value, tok.pos)
        if tok.kind != "ident" or tok.text.lower() in KEYWORDS:
            raise self.expected("a key such as metrics.x, params.x, tags.x or an attribute")
        self.advance()
        prefix, dot, rest = tok.text.partition(".")
        if not dot:
            return self._attribute(prefix, tok.pos)
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            raise self.error(
                tok.pos,
                f"unknown key prefix {prefix!r}; expected one of attributes, metrics, "
                "params, tags (or an attribute name)",
            )
        name = rest
        if not rest and self.tok.kind in ("quoted", "string"):
            name = self.advance().value
        if not name:
            raise self.error(
                tok.pos, f"empty key after '{prefix}.'; write {prefix}.name or {prefix}.`a name`"
            )
        return self._attribute(name, tok.pos) if kind == "attribute" else Key(kind, name)

    def _attribute(self, name: str, pos: int) -> Key:
        canonical = _ATTRIBUTE_ALIASES.get(name.lower(), name.lower())
        if canonical not in ATTRIBUTES:
            valid = ", ".join(sorted([*ATTRIBUTES, *_ATTRIBUTE_ALIASES]))
            raise self.error(
                pos,
                f"unknown attribute {name!r}; valid attributes: {valid} "
                "(metrics, params and tags take a prefix: metrics.x, params.x, tags.x)",
            )
        return Key("attribute", canonical)

    def take_word(self, *words: str) -> str | None:
        """Consume and return the current keyword (lowercased) if it is one of ``words``."""
        if not self.is_word(*words):
            return None
        return self.advance().text.lower()

    def parse_comparison(self) -> Comparison:
        pos = self.tok.pos
        key = self.parse_key()
        self.value_tokens: list[Token] = []
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            return self._check(Comparison(key, tok.text, self.parse_value(f"'{tok.text}'"), pos))
        if self.take_word("is"):
            negate = self.take_word("not")
            if not self.take_word("null"):
                raise self.expected("'null' after 'is'" + (" not" if negate else ""))
            return Comparison(key, "is not null" if negate else "is null", None, pos)
        negate = self.take_word("not")
        word = self.take_word("in", "like", "ilike")
        if word is None:
            if negate:
                raise self.expected("'in', 'like' or 'ilike' after 'not'")
            raise self.expected(
                f"an operator (=, !=, <, <=, >, >=, in, not in, like, ilike, is null) after {key}"
            )
        op = f"not {word}" if negate else word
        if word != "in":
            return self._check(Comparison(key, op, self.parse_value(f"'{op}'"), pos))
        if self.tok.kind != "(":
            raise self.expected(f"'(' after '{op}'")
        self.advance()
        values = [self.parse_value(f"'{op} ('")]
        while self.tok.kind == ",":
            self.advance()
            values.append(self.parse_value("','"))
        if self.tok.kind != ")":
            raise self.expected("',' or ')' in the value list")
        self.advance()
        return self._check(Comparison(key, op, tuple(values), pos))

    def parse_value(self, after: str) -> Value:
        tok = self.tok
        if self.is_word("null"):
            raise self.error(tok.pos, "compare with null using 'is null' or 'is not null'")
        if tok.kind in ("string", "number"):
            value: Value = tok.value
        elif self.is_word("true", "false"):
            value = tok.text.lower() == "true"
        else:
            raise self.expected(f"a value after {after}")
        self.value_tokens.append(self.advance())
        return value

    def _check(self, cond: Comparison) -> Comparison:
        try:
            return check_comparison(cond)
        except _Mismatch as exc:
            pos = cond.position if exc.index is None else self.value_tokens[exc.index].pos
            raise self.error(pos, exc.detail) from None


class _Mismatch(InvalidInput):
    def __init__(self, detail: str, index: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.index = detail, index


def check_comparison(cond: Comparison) -> Comparison:
    """Return ``cond`` with its value normalised, or raise ``InvalidInput`` if it is unsound.

    The parser calls this for every condition; ``compile_filter`` calls it again, so a
    hand-built tree gets the same checks.
    """
    key, op, value = cond.key, cond.op, cond.value
    if key.kind not in _PLURAL or (key.kind != "attribute" and not key.name):
        raise _Mismatch(f"invalid key {key!r}")
    if key.kind == "attribute" and key.name not in ATTRIBUTES:
        raise _Mismatch(f"unknown attribute {key.name!r}")
    vtype = ATTRIBUTES[key.name] if key.kind == "attribute" else key.kind
    if op in ("is null", "is not null"):
        return cond
    if op not in _OPS[vtype]:
        allowed = ", ".join((*_OPS[vtype], "is null", "is not null"))
        raise _Mismatch(f"{key} does not support {op!r}; use one of {allowed}")
    values = value if isinstance(value, tuple) else (value,)
    if isinstance(value, tuple) != op.endswith("in") or not values:
        raise _Mismatch(f"{op!r} needs {'a list of values' if op.endswith('in') else 'a value'}")
    want = {"metric": "a number", "number": "a number", "bool": "true or false"}.get(vtype)
    if vtype in ("param", "tag"):
        want = "a string" if "like" in op else "a number" if op in _ORDERING else None
    elif vtype in ("string", "status"):
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
            raise _Mismatch(f"{op!r} on {key} needs {needs}, found {found}", index)
    if vtype == "bool" and isinstance(value, str):
        return Comparison(key, op, value.lower() == "true", cond.position)
    if vtype == "status":
        low = tuple(str(v).lower() for v in values)
        return Comparison(key, op, low if op.endswith("in") else low[0], cond.position)
    return cond


def parse_filter(text: str | None) -> FilterExpr | None:
    """Return the parsed filter, or None (match every run) for None or blank text.

    Raises ``InvalidInput`` naming the 1-based position of any syntax error.
    """
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput(f"filter must be a string, got {type(text).__name__}")
    parser = _Parser(text, "filter")
    if parser.tok.kind == "end":
        return None
    expr = parser.parse_or()
    if parser.tok.kind != "end":
        raise parser.expected("'and', 'or' or end of input")
    return expr


def parse_order_by(items: str | Sequence[str] | None) -> list[OrderKey]:
    """Return the order keys in ``items`` (``"metrics.acc DESC"``, default ascending).

    Takes one comma-separated string or a sequence of them; raises ``InvalidInput``.
    """
    if items is None:
        return []
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, Sequence):
        raise InvalidInput(f"order_by must be a string or a list, got {type(items).__name__}")
    keys: list[OrderKey] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(f"order_by entries must be strings, got {type(item).__name__}")
        parser = _Parser(item, "order_by")
        while parser.tok.kind != "end":
            key = parser.parse_key()
            ascending = True
            if parser.is_word("asc", "desc"):
                ascending = parser.advance().text.lower() == "asc"
            keys.append(OrderKey(key, ascending))
            if parser.tok.kind == "end":
                break
            if parser.tok.kind != ",":
                raise parser.expected("'asc', 'desc', ',' or end of input")
            parser.advance()
            if parser.tok.kind == "end":
                raise parser.expected("a key after ','")
    return keys


def compile_filter(expr: FilterExpr | None, dialect: str) -> ColumnElement[bool] | None:
    """Return a WHERE clause on ``runs`` for ``expr`` (None when ``expr`` is None).

    ``dialect`` is ``"sqlite"`` or ``"postgresql"``; every literal is a bound parameter.
    """
    from keel.tracking import filter_sql

    return filter_sql.compile_filter(expr, dialect)


def compile_order_by(keys: Sequence[OrderKey], dialect: str) -> list[ColumnElement[Any]]:
    """Return ORDER BY clauses for ``keys``, ending with start_time DESC, run_id ASC."""
    from keel.tracking import filter_sql

    return filter_sql.compile_order_by(keys, dialect)
