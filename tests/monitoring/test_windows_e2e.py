"""End to end: real traffic through keel serve's prediction log, feedback, then the windows.

A model with a training profile and offline metrics (``monitor_live_support``) is served on
127.0.0.1 with a prediction logger; its shutdown flushes the log. Feedback with the true
labels is logged, and ``monitor_windows``/``compute_figures`` must give what scikit-learn
and numpy give on the same requests and rows.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from monitor_live_support import Home, build_home, keel_home, oip_body
from prometheus_client import REGISTRY, generate_latest
from sklearn import metrics

from keel.errors import NotFound

REQUESTS, ROWS = 12, 5


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return build_home(tmp_path_factory.mktemp("windows-e2e-home"))


@pytest.fixture(scope="module")
def traffic(home: Home) -> Iterator[dict[str, Any]]:
    """Serve REQUESTS good requests and one refused one, then log feedback for the good rows."""
    import keel
    from keel.monitoring import log_feedback
    from keel.monitoring.prediction_log import logger_from_settings
    from keel.serving._uvicorn import serving
    from keel.serving.rest import create_app
    from keel.serving.service import ModelService
    from keel.stores import current_stores

    dep = f"win-{uuid.uuid4().hex[:8]}"
    with keel_home(home.path):
        keel.create_deployment(dep, "models:/cancer/1")
        service = ModelService.from_uri("models:/cancer/1")
        service.load()
        logger = logger_from_settings(current_stores(), flush_interval=3600)
        assert logger is not None
        started = int(time.time() * 1000)
        ids = []
        with serving(create_app(service, prediction_log=logger, deployment=dep)) as url:
            with httpx.Client(base_url=url, timeout=30) as client:
                for i in range(REQUESTS):
                    answer = client.post(
                        "/v2/models/cancer/infer", json=oip_body(home.X, i * ROWS, ROWS)
                    )
                    assert answer.status_code == 200, answer.text
                    ids.append(answer.headers["Keel-Request-Id"])
                bad = oip_body(home.X, 0, 2)
                bad["inputs"] = bad["inputs"][1:]
                assert client.post("/v2/models/cancer/infer", json=bad).status_code == 400
        # The sampler job, as keel server runs it, records this process while it served.
        from keel.monitoring.health_sampler import health_sampling_job
        from keel.scheduler import Scheduler

        sampler = health_sampling_job(current_stores(), every_s=15, flush_every_s=1e-9)
        scheduler = Scheduler([sampler])
        scheduler.tick(sampler)
        scheduler.tick(sampler)
        assert scheduler.status[sampler.name].failures == 0
        labels = home.y.to_numpy()[: REQUESTS * ROWS].astype(float)
        log_feedback(dep, np.repeat(ids, ROWS).tolist(), labels.tolist(),
                     row=np.tile(np.arange(ROWS), REQUESTS).tolist())  # fmt: skip
        ended = int(time.time() * 1000) + 1
        yield {"deployment": dep, "start": started, "end": ended, "labels": labels}


def test_windows_of_served_traffic_match_sklearn(home: Home, traffic: dict[str, Any]) -> None:
    from keel.monitoring import monitor_windows, read_predictions

    with keel_home(home.path):
        reports = monitor_windows(
            traffic["deployment"], window="1d", start=traffic["start"], end=traffic["end"]
        )
        log = read_predictions(traffic["deployment"])
    assert len(reports) == 1
    (report,) = reports
    health = report.health
    assert health is not None
    assert health.requests == REQUESTS + 1
    assert health.rejected_rate == pytest.approx(1 / (REQUESTS + 1))
    assert health.error_rate == 0.0
    latencies = log[log["status"] == 200].groupby("request_id")["latency_ms"].first()
    assert health.latency_p95_ms == pytest.approx(float(np.percentile(latencies, 95)))
    assert report.process is not None
    assert report.process.samples == 2
    (version,) = report.versions
    assert (version.model, version.version) == ("cancer", "1")
    assert version.quality is not None
    assert version.quality.schema_ok
    assert version.drift is not None
    assert version.labelled_rows == REQUESTS * ROWS
    perf = version.performance
    assert perf is not None
    X = home.X.iloc[: REQUESTS * ROWS]
    predicted = home.model.predict(X)
    assert perf.metrics["accuracy"] == pytest.approx(
        metrics.accuracy_score(traffic["labels"], predicted)
    )
    assert perf.metrics["f1"] == pytest.approx(metrics.f1_score(traffic["labels"], predicted))
    proba = home.model.predict_proba(X)[:, 1]
    assert perf.metrics["roc_auc"] == pytest.approx(metrics.roc_auc_score(traffic["labels"], proba))
    assert version.decay is not None
    offline = metrics.accuracy_score(home.y, home.model.predict(home.X))
    assert version.decay.decay["accuracy"] == pytest.approx(offline - perf.metrics["accuracy"])


def test_figures_and_gauges_of_served_traffic(home: Home, traffic: dict[str, Any]) -> None:
    from keel.monitoring import compute_figures
    from keel.monitoring.figures import (
        figures_job,
        forget_figures,
        published_figures,
        refresh_figures,
    )
    from keel.stores import current_stores

    with keel_home(home.path):
        stores = current_stores()
        figures = compute_figures(
            stores, traffic["deployment"], window_s=86_400.0, now_ms=traffic["end"]
        )
        assert figures["request_count"] == REQUESTS + 1
        assert figures["schema_violations"] == 0
        assert 0.0 <= figures["accuracy"] <= 1.0
        assert "accuracy_decay" in figures
        assert "rmse" not in figures  # a classifier: no regression figure, not a 0
        assert figures["cpu_percent"] >= 0.0
        if sys.platform.startswith("linux"):  # resident memory is read from /proc
            assert figures["memory_rss_bytes"] > 0
        try:
            job = figures_job(stores, window_s=86_400.0)
            assert not job.exclusive
            job.run()
            published = published_figures()
            refreshed = refresh_figures(stores, window_s=86_400.0)
            text = generate_latest(REGISTRY).decode()
        finally:
            forget_figures()
    assert published[traffic["deployment"]]["request_count"] == REQUESTS + 1
    assert traffic["deployment"] in refreshed
    assert f'keel_monitor_accuracy{{deployment="{traffic["deployment"]}"}}' in text


def test_unknown_deployment_is_not_found(home: Home) -> None:
    from keel.monitoring import compute_figures, monitor_windows
    from keel.stores import current_stores

    with keel_home(home.path):
        with pytest.raises(NotFound, match="no-such-dep"):
            monitor_windows("no-such-dep")
        with pytest.raises(NotFound, match="no-such-dep"):
            compute_figures(current_stores(), "no-such-dep", window_s=60)


def test_cli_prints_the_windows(home: Home, traffic: dict[str, Any]) -> None:
    import json

    from typer.testing import CliRunner

    from keel.cli.main import app

    dep = traffic["deployment"]
    with keel_home(home.path):
        args = ["monitor", "windows", "--deployment", dep, "--window", "1d", "--since", "2d"]
        as_json = CliRunner().invoke(app, [*args, "--json"])
        table = CliRunner().invoke(app, args)
    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.stdout)
    assert doc["deployment"] == dep
    assert sum(w["health"]["requests"] for w in doc["windows"]) == REQUESTS + 1
    assert table.exit_code == 0, table.output
    assert "accuracy" in table.stdout
    assert str(REQUESTS + 1) in table.stdout
