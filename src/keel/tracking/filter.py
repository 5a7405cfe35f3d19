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
                | datasets "." (name | digest | context)
    prefix     := metrics | metric | params | param | tags | tag
                | attributes | attribute | attr | run
    value      := 'string' | "string" | number | true | false

A ``datasets.`` key asks about the run's dataset inputs (``log_dataset``, a step's declared
inputs), as MLflow's search does: ``datasets.digest in ('ab12…', 'cd34…')`` or
``datasets.name = 'train' and datasets.context = 'training'`` (each condition on its own:
the second holds for a run with *some* input named train and *some* input of context
training). It takes ``=``, ``!=``, ``in``, ``not in``, ``like`` and ``ilike`` with
strings, and holds when at least one input satisfies it, so ``datasets.name != 'train'``
means "has an input not named train". ``datasets.name is null`` finds the runs with no
dataset input at all. Datasets cannot order runs (a run may have several).

Parsing needs no SQLAlchemy; the tree it builds and the checks on each condition are in
``keel.tracking.filter_tree``, and ``compile_filter`` and ``compile_order_by`` (in
``keel.tracking.filter_sql``) turn it into SQL on ``keel.store.schema.runs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.tracking.filter_lexer import KEYWORDS, Token, syntax_error, tokenize
from keel.tracking.filter_tree import (
    ATTRIBUTES,
    DATASET_FIELDS,
    And,
    Comparison,
    FilterExpr,
    Key,
    KeyKind,
    Mismatch,
    Or,
    OrderKey,
    Value,
    check_comparison,
)

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement

__all__ = [
    "ATTRIBUTES", "DATASET_FIELDS", "MAX_FILTER_LENGTH", "MAX_NESTING", "And", "Comparison",
    "FilterExpr", "Key", "Or", "OrderKey", "check_comparison", "compile_filter",
    "compile_order_by", "parse_filter", "parse_order_by",
]  # fmt: skip

MAX_FILTER_LENGTH = 10_000
MAX_NESTING = 50

_ATTRIBUTE_ALIASES = {"run_name": "name"}
_PREFIXES: dict[str, KeyKind] = {
    "metrics": "metric", "metric": "metric", "params": "param", "param": "param",
    "tags": "tag", "tag": "tag", "attributes": "attribute", "attribute": "attribute",
    "attr": "attribute", "run": "attribute", "datasets": "dataset", "dataset": "dataset",
}  # fmt: skip


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
                f"unknown key prefix {prefix!r}; expected one of attributes, datasets, "
                "metrics, params, tags (or an attribute name)",
            )
        name = rest
        if not rest and self.tok.kind in ("quoted", "string"):
            name = self.advance().value
        if kind == "dataset":
            return self._dataset(name, tok.pos)
        if not name:
            raise self.error(
                tok.pos, f"empty key after '{prefix}.'; write {prefix}.name or {prefix}.`a name`"
            )
        return self._attribute(name, tok.pos) if kind == "attribute" else Key(kind, name)

    def _dataset(self, name: str, pos: int) -> Key:
        field_name = name.lower()
        if field_name not in DATASET_FIELDS:
            fields = ", ".join(f"datasets.{f}" for f in DATASET_FIELDS)
            raise self.error(pos, f"unknown dataset key {name!r}; use {fields}")
        return Key("dataset", field_name)

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
        except Mismatch as exc:
            pos = cond.position if exc.index is None else self.value_tokens[exc.index].pos
            raise self.error(pos, exc.detail) from None


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
            pos = parser.tok.pos
            key = parser.parse_key()
            if key.kind == "dataset":
                raise parser.error(
                    pos, f"{key} cannot order runs (a run may have several dataset inputs)"
                )
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
