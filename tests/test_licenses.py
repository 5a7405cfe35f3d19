"""Keel is Apache-2.0 and depends on nothing under a source-available licence."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

SOURCE_AVAILABLE = re.compile(
    r"business source|\bBUSL\b|\bBSL[- ]?1|server side public|\bSSPL\b|elastic license|"
    r"commons clause|confluent community|polyform",
    re.IGNORECASE,
)


def _licence_text(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    parts = [meta.get("License", "") or "", meta.get("License-Expression", "") or ""]
    parts += [c for c in meta.get_all("Classifier") or [] if c.startswith("License")]
    return " | ".join(p for p in parts if p)


def test_keel_itself_is_apache_2() -> None:
    assert metadata.metadata("keel-mlops")["License-Expression"] == "Apache-2.0"
    licence = Path(__file__).resolve().parents[1] / "LICENSE"
    assert "Apache License" in licence.read_text()
    assert "Version 2.0" in licence.read_text()


def test_no_installed_dependency_is_source_available() -> None:
    offenders = {
        dist.metadata["Name"]: text
        for dist in metadata.distributions()
        if (text := _licence_text(dist)) and SOURCE_AVAILABLE.search(text)
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "text",
    [
        "Business Source License 1.1",
        "BUSL-1.1",
        "SSPL-1.0",
        "Elastic License 2.0",
        "Apache-2.0 with Commons Clause",
    ],
)
def test_the_check_recognises_source_available_licences(text: str) -> None:
    assert SOURCE_AVAILABLE.search(text)


@pytest.mark.parametrize("text", ["Apache-2.0", "MIT", "BSD-3-Clause", "MPL-2.0", "PSF-2.0"])
def test_the_check_lets_open_source_licences_through(text: str) -> None:
    assert not SOURCE_AVAILABLE.search(text)
