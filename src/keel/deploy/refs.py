"""Naming the model version a deployment routes to: a model URI or a backend key.

``models:/churn/3``, ``models:/churn@champion`` and ``models:/churn/latest`` are the
registry's URIs; ``churn/3`` is a backend's key (``Backend.key``), as history and stats
show it. ``runs:/`` URIs are refused: a deployment serves registered versions only, so
each backend has a version number, a digest and an audit trail.
"""

from __future__ import annotations

from keel.errors import InvalidInput
from keel.registry.uris import ModelRef, check_model_name, parse_model_uri

__all__ = ["MAX_REF", "parse_version_ref"]

MAX_REF = 600
MAX_VERSION = 2**31 - 1  # the metadata column is a 32-bit integer


def parse_version_ref(ref: object) -> ModelRef:
    """Return the registered version ``ref`` names; ``InvalidInput`` with the accepted forms."""
    if not isinstance(ref, str) or not ref or len(ref) > MAX_REF:
        raise InvalidInput(
            f"a model version is named by a non-empty string (at most {MAX_REF} characters) "
            f"such as models:/churn/3, models:/churn@champion or churn/3, not {ref!r:.80}"
        )
    if ref.startswith("runs:/"):
        raise InvalidInput(
            f"{ref!r}: a deployment serves registered versions only; register it first "
            "(keel.register_model) and deploy models:/<name>/<version>"
        )
    if ":" in ref:
        parsed = parse_model_uri(ref)
        if not isinstance(parsed, ModelRef):  # runs:/ was refused above; kept for types
            raise InvalidInput(f"{ref!r} does not name a registered model version")
        if parsed.version is not None and parsed.version > MAX_VERSION:
            raise InvalidInput(f"version {parsed.version} in {ref!r:.80} is beyond {MAX_VERSION}")
        return parsed
    name, sep, version = ref.rpartition("/")
    if not sep or not version.isdigit() or int(version) < 1 or int(version) > MAX_VERSION:
        raise InvalidInput(
            f"invalid model version {ref!r}; use models:/<name>/<version>, "
            "models:/<name>@<alias>, models:/<name>/latest or <name>/<version>"
        )
    return ModelRef(check_model_name(name), version=int(version))
