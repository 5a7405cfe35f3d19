"""``keel.serving``'s public names: sorted, all resolvable, and loaded only on use."""

from __future__ import annotations

import subprocess
import sys

import keel.serving


def test_exports_are_sorted_and_resolve() -> None:
    assert keel.serving.__all__ == sorted(keel.serving.__all__)
    for name in keel.serving.__all__:
        assert getattr(keel.serving, name).__name__ == name


def test_importing_the_package_loads_no_server_or_numpy() -> None:
    code = (
        "import sys, keel.serving, keel.serving.protocol; "
        "print(sorted(m for m in ('numpy', 'starlette', 'uvicorn', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "[]"
