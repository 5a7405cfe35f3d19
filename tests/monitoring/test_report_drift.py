"""Drift over time: ``drift_over_time`` against ``drift`` per bucket, and ``keel monitor
drift REF CUR --time-column ts --bucket 1h -o drift.html --json``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result
from windows_support import HOUR, T0, training_frame

from keel.cli.main import app
from keel.errors import InvalidInput

HOURS, PER_HOUR = 6, 300


def current_frame(*, as_ms: bool = False) -> pd.DataFrame:
    """Six hours of rows; ``x`` shifts by 2 standard deviations from hour 3 on."""
    rng = np.random.default_rng(11)
    n = HOURS * PER_HOUR
    hour = np.repeat(np.arange(HOURS), PER_HOUR)
    ms = T0 + hour * HOUR + rng.integers(0, HOUR, n)
    return pd.DataFrame(
        {
            "ts": ms if as_ms else pd.to_datetime(ms, unit="ms", utc=True),
            "x": rng.normal(0.0, 1.0, n) + np.where(hour >= 3, 2.0, 0.0),
            "y": rng.uniform(0.0, 10.0, n),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    training_frame().to_parquet(ref)
    current_frame().to_parquet(cur)
    return ref, cur


def keel_cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["monitor", "drift", *args])


@pytest.mark.parametrize("as_ms", [False, True])
def test_each_bucket_is_drift_of_its_rows(as_ms: bool) -> None:
    from keel.monitoring import drift
    from keel.monitoring.report_drift import drift_over_time

    ref, cur = training_frame(), current_frame(as_ms=as_ms)
    buckets = drift_over_time(ref, cur, time_column="ts", bucket="1h")
    assert [b.start_ms for b in buckets] == [T0 + h * HOUR for h in range(HOURS)]
    assert [b.rows for b in buckets] == [PER_HOUR] * HOURS
    ms = cur["ts"] if as_ms else (cur["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta("1ms")
    for b in buckets:
        rows = cur[(ms >= b.start_ms) & (ms < b.end_ms)].drop(columns="ts")
        expected = drift(ref, rows)
        assert b.report.share == expected.share
        assert b.report.column("x").statistic == pytest.approx(expected.column("x").statistic)
    assert [b.report.column("x").drifted for b in buckets] == [False] * 3 + [True] * 3
    assert json.loads(json.dumps([b.to_dict() for b in buckets]))[0]["rows"] == PER_HOUR


def test_cli_writes_drift_over_time_html_and_json(files: tuple[Path, Path], tmp_path: Path) -> None:
    ref, cur = files
    out = tmp_path / "drift.html"
    result = keel_cli(str(ref), str(cur), "--time-column", "ts", "--bucket", "1h",
                      "-o", str(out), "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["column"] for c in data["columns"]] == ["x", "y", "colour"]  # never ts
    assert len(data["timeline"]) == HOURS
    assert data["timeline"][-1]["drift"]["columns"]["x"]["drifted"] is True
    page = out.read_text()
    assert 'id="over-time"' in page
    timeline = page[page.index('id="timeline"') :]
    assert timeline[: timeline.index("</table>")].count("<tr><td>") == HOURS  # one per bucket
    assert "<script" not in page
    assert re.search(r"<link|\ssrc=", page) is None
    for column in ("x", "y", "colour"):
        assert f'id="col-{column}"' in page
    table = keel_cli(str(ref), str(cur), "--time-column", "ts", "--bucket", "2h")
    assert table.exit_code == 0, table.output
    assert "drift over time" in table.output


def test_cli_drift_without_time_column_still_writes_html_and_json(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    ref, cur = files
    out = tmp_path / "plain.html"
    result = keel_cli(str(ref), str(cur), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert "timeline" not in json.loads(result.stdout)
    assert 'id="over-time"' not in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time-column", "when"], "'when' is not a column"),
        (["--time-column", "colour"], "must be datetimes or integers"),
        (["--time-column", "ts", "--bucket", "0h"], "--bucket"),
        (["--time-column", "ts", "--bucket", "-1d"], "--bucket"),
        (["--time-column", "ts", "--bucket", "1s"], "the most is 1,000"),
    ],
)
def test_cli_bad_time_column_or_bucket_exits_2(
    files: tuple[Path, Path], args: list[str], message: str
) -> None:
    ref, cur = files
    result = keel_cli(str(ref), str(cur), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_time_column_without_values_is_invalid() -> None:
    from keel.monitoring.report_drift import drift_over_time

    cur = current_frame()
    cur["ts"] = pd.NaT
    with pytest.raises(InvalidInput, match="has no value"):
        drift_over_time(training_frame(), cur, time_column="ts")
