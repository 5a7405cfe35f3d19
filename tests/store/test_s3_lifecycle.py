"""The whole tracking and registry path with artifacts on S3 (a local moto endpoint)."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

import keel
from keel.errors import IntegrityError

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_home(keel_env, s3_endpoint, s3_bucket, monkeypatch) -> str:
    """A fresh Keel home whose artifact store is a new prefix in the moto bucket."""
    from tests.conftest import _reset

    prefix = f"keel-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KEEL_ARTIFACT_URI", f"s3://{s3_bucket}/{prefix}")
    monkeypatch.setenv("KEEL_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _reset()
    return prefix


def test_artifacts_and_models_live_on_s3_and_are_verified(
    s3_home: str, s3_bucket: str, s3_client, tmp_path: Path
) -> None:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on iris\n")

    with keel.start_run(experiment="s3") as run:
        run.log_artifact(notes, "docs")
        run.log_model(model, "model", input_example=X.head(3))
    version = keel.register_model(f"runs:/{run.run_id}/model", "iris")

    loaded = keel.load_model(f"models:/iris/{version.version}")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    out = keel.download_artifacts(run.run_id, "docs", tmp_path / "out")
    assert (out / "notes.txt").read_text() == "trained on iris\n"

    keys = [
        o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket, Prefix=s3_home)["Contents"]
    ]
    entry = keel.list_artifacts(run.run_id, "docs")[0]
    (blob_key,) = [k for k in keys if k.endswith(entry.digest)]
    s3_client.put_object(Bucket=s3_bucket, Key=blob_key, Body=b"tampered on the server\n")
    with pytest.raises(IntegrityError, match=entry.digest):
        keel.download_artifacts(run.run_id, "docs", tmp_path / "again")
    assert not (tmp_path / "again" / "docs" / "notes.txt").exists()
