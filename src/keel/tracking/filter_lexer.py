"""The run search language's tokenizer, shared by filters and ``order_by`` entries.

Turns text into :class:`Token` objects for the parser in ``keel.tracking.filter`` and
formats syntax errors that point at a 1-based position with a caret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from keel.errors import InvalidInput

__all__ = ["IDENT", "KEYWORDS", "NUMBER", "OP", "Token", "syntax_error", "tokenize"]


@dataclass(frozen=True)
class Token:
    kind: str  # ident, quoted, string, number, op, "(", ")", ",", end
    text: str
    pos: int  # 1-based
    value: Any = None


NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
IDENT = re.compile(r"[^\W\d][\w.\-/]*")
OP = re.compile(r"<=|>=|!=|<>|=|<|>")
KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null", "true", "false"}


def syntax_error(text: str, what: str, pos: int, detail: str) -> InvalidInput:
    """Return an ``InvalidInput`` for ``detail`` at ``pos`` in ``text``, with a caret."""
    shown, start = text, 0
    if len(shown) > 120:
        start = max(0, min(pos - 60, len(shown) - 120))
        shown = shown[start : start + 120]
    shown = "".join(c if c.isprintable() else " " for c in shown)
    caret = " " * (pos - 1 - start) + "^"
    return InvalidInput(f"invalid {what} at position {pos}: {detail}\n  {shown}\n  {caret}")


def tokenize(text: str, what: str) -> list[Token]:
    """Return the tokens of ``text`` (ending with an ``end`` token); ``what`` names it."""
    i, out = 0, []
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            out.append(Token(c, c, i + 1))
            i += 1
        elif c in "'\"`":
            j, chars = i + 1, []
            while True:
                if j >= len(text):
                    kind = "back-ticked name" if c == "`" else "string"
                    raise syntax_error(text, what, i + 1, f"unterminated {kind} starting here")
                if text[j] == c:
                    if text[j + 1 : j + 2] != c:
                        break
                    j += 1  # a doubled quote stands for itself
                chars.append(text[j])
                j += 1
            kind = "quoted" if c == "`" else "string"
            out.append(Token(kind, text[i : j + 1], i + 1, "".join(chars)))
            i = j + 1
        elif m := NUMBER.match(text, i):
            end = m.end()
            if end < len(text) and (text[end].isalnum() or text[end] in "_."):
                word = re.match(r"[\w.+\-]*", text[i:]).group()  # type: ignore[union-attr]
                raise syntax_error(text, what, i + 1, f"expected a number, found {word!r}")
            value = Decimal(m.group())  # the pattern admits only valid numbers
            if value and abs(value.adjusted()) > 999:
                detail = f"number {m.group()!r} is out of range (1e±999)"
                raise syntax_error(text, what, i + 1, detail)
            out.append(Token("number", m.group(), i + 1, value))
            i = end
        elif m := IDENT.match(text, i):
            out.append(Token("ident", m.group(), i + 1))
            i = m.end()
        elif m := OP.match(text, i):
            op = "!=" if m.group() == "<>" else m.group()
            out.append(Token("op", op, i + 1))
            i = m.end()
        else:
            raise syntax_error(text, what, i + 1, f"unexpected character {c!r}")
    out.append(Token("end", "", len(text) + 1))
    return out
