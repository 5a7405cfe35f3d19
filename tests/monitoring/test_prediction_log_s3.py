"""The prediction log on an S3 artifact root (moto on 127.0.0.1): written, listed, read by
DuckDB through the registered fsspec filesystem (no DuckDB extension), feedback joined."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest
from tests.store.conftest import s3_bucket, s3_client, s3_endpoint  # noqa: F401 - fixtures

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_home(keel_env: Any, s3_endpoint: str, s3_bucket: str, monkeypatch: Any) -> str:  # noqa: F811
    """A fresh Keel home whose artifact store is a new prefix in the moto bucket."""
    from tests.conftest import _reset

    prefix = f"plog-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KEEL_ARTIFACT_URI", f"s3://{s3_bucket}/{prefix}")
    monkeypatch.setenv("KEEL_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _reset()
    return prefix


def test_segments_on_s3_are_partitioned_and_read_back_with_feedback(
    s3_home: str,
    s3_bucket: str,  # noqa: F811
    s3_client: Any,  # noqa: F811
) -> None:
    from tests.deploy._control import register_versions

    import keel
    from keel.monitoring.prediction_log import logger_from_settings
    from keel.stores import current_stores

    register_versions("m", 1)
    keel.create_deployment("s3-dep", "models:/m/1")
    logger = logger_from_settings(current_stores(), flush_interval=3600)
    assert logger is not None
    assert logger.root.url.startswith("s3://")
    t0 = 1_790_000_000_000
    for i in range(3):
        logger.record(
            deployment="s3-dep",
            model="m",
            version="1",
            request_id=f"r{i}",
            time_ms=t0 + i * 3_600_000,  # three hours
            latency_ms=1.0,
            status=200,
            rows=2,
            inputs=np.array([[i, 1.0], [i, 2.0]]),
            input_names=["x", "z"],
            outputs={"predict": np.array([i, i])},
        )
    logger.close()
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{s3_home}/monitoring/")
    keys = sorted(o["Key"] for o in listed["Contents"])
    assert len(keys) == 3
    assert all(k.endswith(".parquet") for k in keys)
    assert [k.split("/")[3:5] for k in keys] == [
        ["deployment=s3-dep", "hour=2026-09-21T14"],
        ["deployment=s3-dep", "hour=2026-09-21T15"],
        ["deployment=s3-dep", "hour=2026-09-21T16"],
    ]
    assert keel.log_feedback("s3-dep", ["r1", "r2"], [1.0, "late"], row=[1, 0]) == 2
    df = keel.read_predictions("s3-dep")
    assert df["request_id"].tolist() == ["r0", "r0", "r1", "r1", "r2", "r2"]
    assert df["input.z"].tolist() == [1.0, 2.0] * 3
    assert df["target"].iloc[3] == 1.0
    assert df["target_label"].iloc[4] == "late"
    window = keel.read_predictions("s3-dep", start=t0 + 3_600_000, end=t0 + 7_200_000)
    assert window["request_id"].tolist() == ["r1", "r1"]
