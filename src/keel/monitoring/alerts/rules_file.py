"""Alert rules from a YAML file or a parsed document (the format is in ``rules``' doc).

The document is a mapping with a ``rules`` list, or the list itself. Every rule is checked
before any is returned; a bad one is an ``InvalidInput`` naming its position, its name
and the field. Files are read with ``yaml.safe_load`` (no tags that build objects), at
most 1 MB and 1,000 rules; YAML aliases may repeat a value, but the document they expand
to is at most ``MAX_NODES`` values (a "billion laughs" file is refused, not expanded).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from keel.errors import InvalidInput, MissingDependency
from keel.monitoring.alerts.rules import AlertRule, parse_rule

__all__ = [
    "MAX_NODES",
    "MAX_RULES",
    "MAX_RULES_FILE",
    "parse_rules_document",
    "read_rules_file",
]

MAX_RULES_FILE = 1_000_000  # bytes of YAML
MAX_RULES = 1_000
# Values of the document once aliases are expanded: far above any real rules file, far
# below what exhausts memory when a trigger payload is serialised.
MAX_NODES = 200_000


def _check_expanded_size(document: object, source: str) -> None:
    # An alias is the same Python object reached again, so it is counted each time: the
    # walk stops at the budget however many times nine aliases of nine expand.
    seen, stack = 0, [document]
    while stack:
        value = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise InvalidInput(
                f"{source} expands to more than {MAX_NODES:,} values (YAML aliases repeated "
                "within each other); write the rules out plainly"
            )
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def parse_rules_document(
    document: object, *, source: str = "the rules document"
) -> list[AlertRule]:
    """Return every rule of a parsed YAML/JSON document (``{"rules": [...]}`` or a list)."""
    if isinstance(document, Mapping):
        if set(document) - {"rules"}:
            extra = ", ".join(sorted(str(k) for k in document if k != "rules"))[:200]
            raise InvalidInput(f"{source}: unknown top-level key(s) {extra}; only 'rules'")
        document = document.get("rules")
    if not isinstance(document, list):
        raise InvalidInput(f"{source} holds a list of rules (or a mapping with 'rules')")
    if len(document) > MAX_RULES:
        raise InvalidInput(f"{source} holds {len(document)} rules; at most {MAX_RULES}")
    rules = [
        parse_rule(item, where=f"rule #{i + 1} of {source}") for i, item in enumerate(document)
    ]
    names = [r.name for r in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"{source} names rule(s) {', '.join(twice)[:200]} more than once")
    return rules


def read_rules_file(path: str | Path) -> list[AlertRule]:
    """Return the rules of a YAML file (format in the module doc); nothing is stored."""
    try:
        import yaml
    except ImportError:
        raise MissingDependency(
            "reading alert rules from YAML needs PyYAML: pip install 'keel-mlops[k8s]'"
        ) from None
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_RULES_FILE:
            raise InvalidInput(f"{file}: {size} bytes; a rules file is at most {MAX_RULES_FILE}")
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"no alert rules file at {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read alert rules file {file}: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{file} is not valid YAML: {str(exc)[:300]}") from None
    _check_expanded_size(document, str(file))
    return parse_rules_document(document, source=str(file))
