"""Model URIs: ``models:/name/3``, ``models:/name@alias``, ``models:/name/latest``, ``runs:/…``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.errors import InvalidInput
from keel.tracking.validation import check_name

__all__ = ["ModelRef", "RunModelRef", "check_alias", "check_model_name", "parse_model_uri"]

_ALIAS = re.compile(r"^[A-Za-z_][\w\-]{0,63}$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version named by number, alias or "latest"."""

    name: str
    version: int | None = None
    alias: str | None = None


@dataclass(frozen=True)
class RunModelRef:
    """A model logged inside a run, not necessarily registered."""

    run_id: str
    path: str


def check_model_name(name: object) -> str:
    """Return a valid registered-model name (no '/' or '@', which URIs use)."""
    clean = check_name("model", name)
    if "/" in clean or "@" in clean or ":" in clean:
        raise InvalidInput(f"model name {clean!r} must not contain '/', '@' or ':'")
    return clean


def check_alias(alias: object) -> str:
    """Return a valid alias: a letter or _, then up to 63 letters, digits, _ or -."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidInput(
            f"alias {alias!r} must start with a letter or _ and contain only letters, "
            "digits, _ and - (at most 64 characters)"
        )
    if alias.lower() == "latest":
        raise InvalidInput("'latest' is reserved: models:/name/latest is the newest version")
    return alias


MAX_VERSION = 2**31 - 1  # the metadata column is a 32-bit integer


def parse_model_uri(uri: object) -> ModelRef | RunModelRef:
    """Return what a model URI names; ``InvalidInput`` with the accepted forms otherwise."""
    forms = (
        "models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/latest "
        "or runs:/<run-id>/<path>"
    )
    if not isinstance(uri, str) or not uri:
        raise InvalidInput(f"model URI must be a non-empty string such as {forms}")
    if uri.startswith("runs:/"):
        rest = uri[len("runs:/") :].strip("/")
        run_id, _, path = rest.partition("/")
        if not re.fullmatch(r"[0-9a-f]{32}", run_id) or not path:
            raise InvalidInput(f"invalid run model URI {uri!r}; expected runs:/<run-id>/<path>")
        return RunModelRef(run_id, path.strip("/"))
    if not uri.startswith("models:/"):
        raise InvalidInput(f"invalid model URI {uri!r}; expected {forms}")
    rest = uri[len("models:/") :]
    if "@" in rest:
        name, _, alias = rest.partition("@")
        return ModelRef(check_model_name(name), alias=check_alias(alias))
    name, sep, version = rest.rpartition("/")
    if not sep or not name:
        raise InvalidInput(f"invalid model URI {uri!r}; expected {forms}")
    if version == "latest":
        return ModelRef(check_model_name(name))
    # isdigit() is true for other scripts' digits too; a version is ASCII, and it fits the
    # database's 32-bit column (a longer number would overflow the driver, not be refused).
    if not (version.isascii() and version.isdigit()) or not 1 <= int(version) <= MAX_VERSION:
        raise InvalidInput(
            f"invalid version {version[:40]!r} in {uri[:120]!r}; versions are 1, 2, 3, … "
            f"up to {MAX_VERSION}"
        )
    return ModelRef(check_model_name(name), version=int(version))
