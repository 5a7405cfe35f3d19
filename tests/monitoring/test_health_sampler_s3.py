"""Process samples on an S3 artifact root (moto on 127.0.0.1): written whole, read back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.store.conftest import s3_bucket, s3_client, s3_endpoint  # noqa: F401 - fixtures

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_home(keel_env: Any, s3_endpoint: str, s3_bucket: str, monkeypatch: Any) -> str:  # noqa: F811
    """A fresh Keel home whose artifact store is a new prefix in the moto bucket."""
    from tests.conftest import _reset

    prefix = f"health-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KEEL_ARTIFACT_URI", f"s3://{s3_bucket}/{prefix}")
    monkeypatch.setenv("KEEL_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _reset()
    return prefix


def test_samples_on_s3_are_partitioned_and_read_back(
    s3_home: str,
    s3_bucket: str,  # noqa: F811
    s3_client: Any,  # noqa: F811
) -> None:
    from keel.monitoring.health_sampler import HealthSampler, artifact_root, read_samples
    from keel.stores import current_stores

    root = artifact_root(current_stores())
    assert root.startswith("s3://")
    sampler = HealthSampler(root)
    taken = [sampler.sample() for _ in range(4)]
    assert sampler.flush() == 4
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{s3_home}/monitoring/health/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    assert keys
    assert all("/hour=" in k and k.endswith(".parquet") for k in keys)
    back = read_samples(root, taken[0].time_ms, taken[-1].time_ms + 1)
    assert back["time_ms"].tolist() == [s.time_ms for s in taken]
    assert read_samples(root, 0, 1).empty
