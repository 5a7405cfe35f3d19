"""Lineage fixtures: a pipeline run that read a file and registered a model, deployed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Traced:
    pipeline_run: str
    read_run: str
    fit_run: str
    artifact: str  # read_rows' output digest, fit's input
    dataset: str  # rows.csv's digest
    score: str  # fit's output digest


@pytest.fixture
def traced(backend: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Traced:
    """The traced pipeline run on SQLite, PostgreSQL and through a server."""
    return make_traced(tmp_path, monkeypatch)


@pytest.fixture
def traced_here(keel_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Traced:
    """The traced pipeline run in a local (SQLite) home."""
    return make_traced(tmp_path, monkeypatch)


def make_traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Traced:
    import lineage_pipelines as lp

    import keel

    monkeypatch.chdir(tmp_path)
    (tmp_path / "rows.csv").write_text("\n".join(str(i) for i in range(30)), encoding="utf-8")
    run = lp.from_file.run(max_workers=1)
    keel.create_deployment("lineage-prod", "models:/lineage-model/1")
    read, fit = run.step("read_rows"), run.step("fit")
    dataset = keel.get_run_inputs(read.run_id)[0].digest
    assert read.output is not None
    assert fit.output is not None
    return Traced(
        run.run_id, read.run_id, fit.run_id, read.output.digest, dataset, fit.output.digest
    )
