"""The serving process sampler: CPU and memory samples stored as Parquet and read back."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from windows_support import HOUR, T0, log_frame

from keel.errors import InvalidInput
from keel.monitoring.health_sampler import (
    HealthSampler,
    artifact_root,
    health_sampling_job,
    read_samples,
    rss_bytes,
)
from keel.monitoring.windows import compute_windows
from keel.scheduler import Scheduler

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


@linux
def test_rss_is_this_processes_resident_memory() -> None:
    rss = rss_bytes()
    assert rss is not None
    assert rss > 0
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    assert abs(rss - pages * os.sysconf("SC_PAGE_SIZE")) < 64 * 1024 * 1024


def test_samples_are_written_under_hour_partitions_and_read_back(tmp_path: Path) -> None:
    sampler = HealthSampler(str(tmp_path), flush_every_s=3600)
    sum(i * i for i in range(200_000))  # some CPU time to measure
    taken = [sampler.sample() for _ in range(3)]
    assert all(s.cpu_percent >= 0 for s in taken)
    assert sampler.flush() == 3
    assert sampler.flush() == 0
    folders = list((tmp_path / "monitoring" / "health").iterdir())
    assert len(folders) >= 1
    assert all(f.name.startswith("hour=") for f in folders)
    assert not list(tmp_path.rglob(".*.tmp"))  # temp names were renamed into place
    start, end = taken[0].time_ms, taken[-1].time_ms + 1
    back = read_samples(str(tmp_path), start, end)
    assert len(back) == 3
    assert back["process"].tolist() == [taken[0].process] * 3
    assert back["cpu_percent"].tolist() == pytest.approx([s.cpu_percent for s in taken])
    assert read_samples(str(tmp_path), end, end + 1000).empty
    assert read_samples(str(tmp_path / "nothing"), start, end).empty
    assert read_samples(str(tmp_path), end, start).empty


def test_the_job_samples_and_flushes_through_the_scheduler(
    keel_env: object, tmp_path: Path
) -> None:
    from keel.stores import current_stores

    stores = current_stores()
    job = health_sampling_job(stores, every_s=5, flush_every_s=1e-9)
    assert not job.exclusive  # every server samples itself
    scheduler = Scheduler([job])
    scheduler.tick(job)
    scheduler.tick(job)
    status = scheduler.status[job.name]
    assert status.runs == 2
    assert status.failures == 0
    back = read_samples(artifact_root(stores), 0, 2**53 - 1)
    assert len(back) == 2
    if sys.platform.startswith("linux"):
        assert back["memory_rss_bytes"].notna().all()


def test_remote_artifacts_need_the_servers_root(keel_env: object) -> None:
    class Remote:
        artifact_uri = tracking_uri = "http://127.0.0.1:9/"

    with pytest.raises(InvalidInput, match="KEEL_ARTIFACT_URI"):
        artifact_root(Remote())  # type: ignore[arg-type]


def test_a_failed_write_keeps_the_samples_for_the_next_flush(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    sampler = HealthSampler(str(blocker), flush_every_s=3600)
    sampler.sample()
    sampler.sample()
    with pytest.raises(NotADirectoryError):
        sampler.flush()
    assert len(sampler._buffer) == 2


def test_bad_settings_and_ranges() -> None:
    with pytest.raises(InvalidInput, match="flush_every_s"):
        HealthSampler("/tmp/x", flush_every_s=0)
    assert read_samples("/tmp/no-such-keel-root", 0, 400 * 86_400_000).empty


def test_foreign_files_under_the_health_folder_are_ignored(tmp_path: Path) -> None:
    sampler = HealthSampler(str(tmp_path))
    taken = sampler.sample()
    sampler.flush()
    health = tmp_path / "monitoring" / "health"
    (health / "hour=not-a-time").mkdir()
    (health / "README").write_text("hello")
    ((health / next(health.glob("hour=2*")).name) / "notes.txt").write_text("x")
    assert len(read_samples(str(tmp_path), taken.time_ms, taken.time_ms + 1)) == 1


def test_windows_take_mean_cpu_and_peak_memory_of_their_samples() -> None:
    times = T0 + np.array([0, 1_000, 2_000, HOUR + 5, HOUR + 10], dtype=np.int64)
    samples = pd.DataFrame(
        {
            "time_ms": times,
            "process": "host:1",
            "cpu_percent": [10.0, 30.0, np.nan, 50.0, 70.0],
            "memory_rss_bytes": pd.array([100, 300, 200, None, None], dtype="Int64"),
        }
    )
    frame = log_frame(30, seed=30, span_ms=HOUR // 2)
    first, second = compute_windows(frame, window="1h", samples=samples)
    assert first.process is not None
    assert second.process is not None
    assert first.process.samples == 3
    assert first.process.cpu_percent == pytest.approx(20.0)
    assert first.process.memory_rss_bytes == 300
    assert second.process.cpu_percent == pytest.approx(60.0)
    assert second.process.memory_rss_bytes is None  # not readable there: absent, not 0
    assert second.health is None  # samples alone make a window, without traffic figures
