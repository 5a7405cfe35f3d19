"""``keel monitor drift`` and ``keel monitor profile``; the HTML report; the package surface."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.monitoring.conftest import make_frame
from typer.testing import CliRunner, Result

import keel.monitoring
from keel.cli.main import app
from keel.monitoring import drift, drift_html


def keel_cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    make_frame(3000, seed=1).to_parquet(ref)
    make_frame(2000, seed=2, shift=1.0, new_category=True).assign(extra=1).to_parquet(cur)
    return ref, cur


def test_drift_prints_a_table_and_the_verdict(files: tuple[Path, Path]) -> None:
    result = keel_cli("monitor", "drift", *map(str, files))
    assert result.exit_code == 0, result.output
    assert "wasserstein" in result.stdout
    assert "jensenshannon" in result.stdout
    assert "dataset drift: 3 of 5 columns drifted (60%, threshold 50%)" in result.stdout


def test_drift_json_is_the_report(files: tuple[Path, Path]) -> None:
    result = keel_cli("monitor", "drift", *map(str, files), "--json", "--method", "x=ks")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(drift(*files, methods={"x": "ks"}).to_dict()))
    assert data["extra_columns"] == ["extra"]
    assert next(c for c in data["columns"] if c["column"] == "x")["method"] == "ks"


def test_drift_writes_a_self_contained_html_report(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "drift.html"
    result = keel_cli("monitor", "drift", *map(str, files), "-o", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert page.count("<svg") == 5
    assert "dataset drift detected" in page
    assert not list(tmp_path.glob(".*.partial"))


def test_fail_on_drift_exits_1_only_on_drift(files: tuple[Path, Path]) -> None:
    ref, cur = files
    assert keel_cli("monitor", "drift", str(ref), str(cur), "--fail-on-drift").exit_code == 1
    assert keel_cli("monitor", "drift", str(ref), str(ref), "--fail-on-drift").exit_code == 0


def test_a_profile_file_works_as_the_reference(files: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cur = files
    stored = tmp_path / "profile.json"
    made = keel_cli("monitor", "profile", str(ref), "-o", str(stored))
    assert made.exit_code == 0, made.output
    result = keel_cli("monitor", "drift", str(stored), str(cur), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["drifted_columns"] == 3
    printed = keel_cli("monitor", "profile", str(ref))
    assert json.loads(printed.stdout)["format"] == "keel.profile/1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.parquet", "{cur}"], "does not exist"),
        (["{ref}", "{cur}", "--method", "x"], "--method takes NAME=VALUE"),
        (["{ref}", "{cur}", "--method", "x=magic"], "unknown drift method 'magic'"),
        (["{ref}", "{cur}", "--threshold", "psi=abc"], "takes a number"),
        (["{ref}", "{cur}", "--threshold", "psi=-1"], "threshold must be"),
        (["{ref}", "{cur}", "--drift-share", "7"], "drift_share must be"),
        (["{ref}", "{cur}", "--columns", "nope"], "no column 'nope'"),
        (["{ref}", "{cur}", "--prediction", "nope"], "no column 'nope'"),
        (["{bad}", "{cur}"], "not readable Parquet"),
        (["{badjson}", "{cur}"], "not valid JSON"),
        (["{ref}", "{cur}", "-o", "{tmp}"], "is a folder"),
        (["{ref}", "{cur}", "-o", "{tmp}/no/such/report.html"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    files: tuple[Path, Path], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 garbage")
    (tmp_path / "bad.json").write_text("{not json")
    values = {
        "ref": files[0],
        "cur": files[1],
        "bad": tmp_path / "bad.parquet",
        "badjson": tmp_path / "bad.json",
        "tmp": tmp_path,
    }
    result = keel_cli("monitor", "drift", *(a.format(**values) for a in args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_html_escapes_hostile_names_and_values() -> None:
    evil = '<img src=x onerror="alert(1)">'
    ref = pd.DataFrame({evil: ["<b>a</b>", "b"] * 50, "v": range(100)})
    cur = pd.DataFrame({evil: ["<script>x</script>", "b"] * 50, "v": range(100)})
    page = drift_html(drift(ref, cur), title="<title>")
    assert "<img" not in page
    assert "<script" not in page
    assert "<b>a" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_the_package_exports_resolve_and_import_lazily() -> None:
    assert keel.monitoring.__all__ == sorted(keel.monitoring.__all__)
    assert set(keel.monitoring.__all__) == set(keel.monitoring._EXPORTS)
    for name in keel.monitoring.__all__:
        assert getattr(keel.monitoring, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = keel.monitoring.nope
    heavy = ["numpy", "pandas", "scipy", "sklearn", "pyarrow"]
    code = (
        "import sys, json, keel, keel.monitoring, keel.cli.monitor; "
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
