"""The package surface: what ``keel`` exports, and that importing it stays light."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import keel


def test_every_exported_name_resolves_and_all_is_sorted() -> None:
    assert keel.__all__ == sorted(keel.__all__)
    for name in keel.__all__:
        assert getattr(keel, name) is not None, name


def test_all_lists_exactly_the_lazy_exports() -> None:
    assert set(keel.__all__) == {*keel._EXPORTS, "__version__"}


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = keel.nope


HEAVY = ["sqlalchemy", "pandas", "numpy", "sklearn", "fastapi", "pyarrow", "duckdb", "alembic"]


def test_import_keel_loads_no_heavy_dependency() -> None:
    code = f"import sys, json, keel; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


@pytest.mark.parametrize(
    "module",
    [
        "keel.config",
        "keel.errors",
        "keel.stores",
        "keel.store.schema",
        "keel.store.database",
        "keel.store.migrate",
        "keel.store.artifacts",
        "keel.tracking.api",
        "keel.tracking.fluent",
        "keel.tracking.sql_store",
        "keel.registry.api",
        "keel.registry.sql_store",
        "keel.registry.packaging",
        "keel.cli.main",
    ],
)
def test_each_module_imports_on_its_own_in_a_fresh_interpreter(module: str) -> None:
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    assert importlib.import_module(module)
