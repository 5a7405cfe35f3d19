"""The same pipeline on every metadata backend: SQLite, PostgreSQL and a Keel server."""

from __future__ import annotations

from typing import Any

import sample_pipelines as sp

import keel.pipelines as kp


def test_run_cache_and_resume_on_each_backend(
    backend: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    first = sp.arithmetic.run({"x": 4, "y": 5}, max_workers=2)
    assert {s.status for s in first.steps} == {"finished"}
    assert kp.load_step_output(first.run_id, "add-2") == 18  # the worker wrote it there
    again = sp.arithmetic.run({"x": 4, "y": 5}, max_workers=2)
    assert {s.status for s in again.steps} == {"cached"}
    failed = sp.branches.run(raise_on_failure=False, max_workers=2)
    assert failed.status == "failed"
    resumed = kp.resume_pipeline(failed.run_id, raise_on_failure=False, max_workers=2)
    assert resumed.resume_of == failed.run_id
    assert {s.node: s.status for s in resumed.steps}["add-2"] == "cached"
    assert [p.name for p in kp.list_pipelines()] == ["arithmetic", "branches"]
