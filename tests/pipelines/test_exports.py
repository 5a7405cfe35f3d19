"""The pipelines public surface: one sorted __all__, lazy, light to import."""

from __future__ import annotations

import json
import subprocess
import sys

import keel
import keel.pipelines as kp


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert kp.__all__ == sorted(kp.__all__)
    assert set(kp.__all__) == set(kp._EXPORTS)
    for name in kp.__all__:
        assert getattr(kp, name) is not None, name


def test_keel_re_exports_the_decorators_and_the_sdk() -> None:
    assert keel.step is kp.step
    assert keel.pipeline is kp.pipeline
    assert keel.run_pipeline is kp.run_pipeline
    assert keel.resume_pipeline is kp.resume_pipeline
    assert keel.PipelineFailed is kp.PipelineFailed
    assert issubclass(kp.PipelineFailed, keel.KeelError)


def test_defining_a_pipeline_loads_no_heavy_dependency() -> None:
    heavy = ["sqlalchemy", "pandas", "numpy", "pyarrow", "sklearn", "fastapi", "pydantic"]
    code = (
        "import sys, json, keel\n"
        "@keel.step\n"
        "def one() -> int:\n"
        "    return 1\n"
        "@keel.pipeline\n"
        "def p():\n"
        "    one()\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []
