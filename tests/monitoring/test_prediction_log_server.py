"""The prediction log behind ``keel server``'s deployments, and feedback through the server.

A real Keel server (uvicorn on 127.0.0.1, lifespan on, so its data plane serves the
deployment) splits traffic 50/50 between two versions; every answer must be logged under
the version that gave it (its ``Keel-Backend`` header), failures too, and feedback sent
with ``keel.log_feedback`` through the server (remote mode) must join by request id.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from prediction_support import Home, build_home, keel_home, oip_body

import keel

DEP = "cancer-prod"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return build_home(tmp_path_factory.mktemp("prediction-log-server"))


@contextmanager
def live_server(home: Path) -> Iterator[str]:
    """A Keel server with its lifespan (data plane, its shutdown flushing the log)."""
    from keel.config import load_settings
    from keel.server import create_app
    from keel.serving._uvicorn import serving

    app = create_app(settings=load_settings(home))
    with serving(app, what="the Keel server", thread_name="keel-server-plog") as url:
        yield url


def test_deployment_requests_and_feedback_are_logged_and_joined(home: Home) -> None:
    X, y = home.X, home.y
    with keel_home(home.path):
        keel.create_deployment(DEP, "models:/cancer/1")
        with live_server(home.path) as url:
            keel.set_tracking_uri(url)
            keel.set_traffic(DEP, {"models:/cancer/1": 50, "models:/cancer/2": 50})
            with httpx.Client(base_url=url, timeout=30) as client:
                answers = [
                    client.post(f"/v2/models/{DEP}/infer", json=oip_body(X, 3 * i, 3))
                    for i in range(24)
                ]
                frame = X.iloc[300:302]
                split = {"columns": list(X.columns), "data": frame.values.tolist()}
                invocation = client.post(
                    f"/deployments/{DEP}/invocations",
                    json={"dataframe_split": split},
                    headers={"Keel-Request-Id": "inv-1"},
                )
                refused = client.post(f"/v2/models/{DEP}/infer", json={"inputs": [], "id": "bad"})
                unknown = client.post("/v2/models/nope/infer", json=oip_body(X, 0, 1))
                metrics = client.get("/metrics").text
            assert all(a.status_code == 200 for a in answers)
            assert invocation.status_code == 200
            assert (refused.status_code, unknown.status_code) == (400, 404)
            ids = [a.headers["Keel-Request-Id"] for a in answers]
            assert [a.json()["id"] for a in answers] == ids
            assert len(set(ids)) == 24
            assert refused.headers["Keel-Request-Id"] == "bad"
            assert "keel_prediction_log_recorded_total" in metrics
            assert "keel_prediction_log_dropped_total 0.0" in metrics
            # ground truth later, through the server: one call for many, then singles
            truth = y.to_numpy()
            written = keel.log_feedback(DEP, ids, [float(truth[3 * i]) for i in range(24)], row=0)
            assert written == 24
            assert keel.log_feedback(DEP, ids[0], 7.5, row=0) == 1  # the latest wins
            assert keel.log_feedback(DEP, "inv-1", "benign", row=1) == 1
            with pytest.raises(keel.NotFound, match="nope"):
                keel.log_feedback("nope", "r", 1.0)
    with keel_home(home.path):
        df = keel.read_predictions(DEP)
    backends = {a.headers["Keel-Request-Id"]: a.headers["Keel-Backend"] for a in answers}
    assert len(df) == 24 * 3 + 2 + 1
    served = df[df["request_id"].isin(ids)]
    logged = (served["model"] + "/" + served["version"]).groupby(served["request_id"]).unique()
    assert {rid: list(v) for rid, v in logged.items()} == {
        rid: [key] for rid, key in backends.items()
    }
    assert set(backends.values()) == {"cancer/1", "cancer/2"}  # both versions answered
    for i, rid in enumerate(ids):
        rows = served[served["request_id"] == rid].sort_values("row")
        version = int(backends[rid].rpartition("/")[2])
        expected = home.models[version].predict(X.iloc[3 * i : 3 * i + 3])
        np.testing.assert_array_equal(rows["output.predict"], expected)
        np.testing.assert_array_equal(rows["input.f2"], X["f2"].to_numpy()[3 * i : 3 * i + 3])
    first = served[served["request_id"] == ids[0]].set_index("row")
    assert first.loc[0, "target"] == 7.5
    assert np.isnan(first.loc[1, "target"])  # no feedback for row 1
    later = served[(served["request_id"] == ids[5]) & (served["row"] == 0)]
    assert later["target"].tolist() == [float(y.to_numpy()[15])]
    assert later["feedback_time_ms"].iloc[0] >= later["time_ms"].iloc[0]
    inv = df[df["request_id"] == "inv-1"].set_index("row")
    assert inv.loc[1, "target_label"] == "benign"
    assert inv["model"].iloc[0] == "cancer"
    bad = df[df["request_id"] == "bad"]
    assert bad["status"].tolist() == [400]
    assert bad["deployment"].tolist() == [DEP]
