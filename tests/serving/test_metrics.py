"""``keel serve``'s /metrics: valid Prometheus text with latency and batch-size histograms.

The text is read back with prometheus-client's own parser, so a malformed exposition
fails here; the figures are checked against requests whose sizes the test chose.
"""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from oip_support import WAIT_S, loaded
from prometheus_client.parser import text_string_to_metric_families

from keel.serving._metrics import BATCH_BUCKETS
from keel.serving._uvicorn import serving
from keel.serving.rest import create_app
from keel.serving.runtime import ModelRuntime
from keel.serving.service import ModelService

ROUTES = {
    "invocations",
    "metadata",
    "live",
    "ready",
    "metrics",
    "model_metadata",
    "model_ready",
    "infer",
}


class Summing:
    """Predicts the sum of each row."""

    def predict(self, data: Any) -> Any:
        return np.asarray(data, dtype=float).sum(axis=1)


def _service() -> ModelService:
    model = loaded(Summing(), columns=["a", "b"], example=[[1.0, 2.0]])
    runtime = ModelRuntime(model, name="adder", version="1")
    service = ModelService(lambda: runtime)
    service.load()
    return service


def _infer(rows: int) -> dict:
    data = np.arange(rows * 2, dtype=float).reshape(rows, 2)
    return {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [rows, 2], "data": data.ravel().tolist()}
        ]
    }


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def _samples(family: Any, suffix: str, **labels: str) -> list[Any]:
    return [
        s
        for s in family.samples
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]


@pytest.fixture(scope="module")
def scraped() -> tuple[dict[str, Any], list[int]]:
    """Metrics after 1-, 2- and 5-row infers, a 3-row /invocations, a 400, unknown paths."""
    service = _service()
    sizes = [1, 2, 5]
    with serving(create_app(service)) as base, httpx.Client(base_url=base, timeout=WAIT_S) as http:
        for rows in sizes:  # one after another: each is its own batch
            assert http.post("/v2/models/adder/infer", json=_infer(rows)).status_code == 200
        split = {"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]] * 3}}
        assert http.post("/invocations", json=split).status_code == 200
        bad = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1, 2, 3]}]}
        assert http.post("/v2/models/adder/infer", json=bad).status_code == 400
        for path in ("/nope", "/v2/models/adder/nope", "/v2/x/y/z"):
            assert http.get(path).status_code == 404
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return _families(response.text), [*sizes, 3]


def test_batch_rows_histogram_counts_each_batch(scraped: tuple[dict[str, Any], list[int]]) -> None:
    families, sizes = scraped
    family = families["keel_serving_batch_rows"]
    assert family.type == "histogram"
    [count] = _samples(family, "_count")
    [total] = _samples(family, "_sum")
    assert count.value == len(sizes)
    assert total.value == sum(sizes)
    buckets = {float(s.labels["le"]): s.value for s in _samples(family, "_bucket")}
    assert sorted(buckets) == [*map(float, BATCH_BUCKETS), float("inf")]
    for bound, value in buckets.items():
        assert value == sum(1 for n in sizes if n <= bound)


def test_latency_histogram_per_route(scraped: tuple[dict[str, Any], list[int]]) -> None:
    families, _ = scraped
    family = families["keel_serving_request_seconds"]
    assert family.type == "histogram"
    counts = {s.labels["route"]: s.value for s in _samples(family, "_count")}
    assert counts == {"infer": 4.0, "invocations": 1.0}  # /metrics observes after rendering
    for route, count in counts.items():
        buckets = sorted(
            (float(s.labels["le"]), s.value) for s in _samples(family, "_bucket", route=route)
        )
        values = [v for _, v in buckets]
        assert values == sorted(values)  # cumulative
        assert buckets[-1] == (float("inf"), count)
        [total] = _samples(family, "_sum", route=route)
        assert 0 < total.value < WAIT_S * count


def test_requests_counter_and_bounded_labels(scraped: tuple[dict[str, Any], list[int]]) -> None:
    families, _ = scraped
    family = families["keel_serving_requests"]
    assert family.type == "counter"
    by_label = {(s.labels["route"], s.labels["code"]): s.value for s in _samples(family, "_total")}
    assert by_label[("infer", "200")] == 3
    assert by_label[("infer", "400")] == 1
    assert by_label[("invocations", "200")] == 1
    routes = {
        s.labels["route"] for f in families.values() for s in f.samples if "route" in s.labels
    }
    assert routes <= ROUTES  # unknown paths add no series
    assert families["keel_serving_ready"].samples[0].value == 1
    assert families["keel_serving_batches"].samples[0].value == 4
    assert families["keel_serving_queue_depth"].type == "gauge"


def test_a_hook_set_before_the_app_still_sees_batches() -> None:
    service = _service()
    seen: list[tuple[int, int]] = []
    service.batcher.on_batch = lambda requests, rows: seen.append((requests, rows))
    with serving(create_app(service)) as base:
        response = httpx.post(f"{base}/v2/models/adder/infer", json=_infer(4), timeout=WAIT_S)
        text = httpx.get(f"{base}/metrics", timeout=WAIT_S).text
    assert response.status_code == 200
    assert seen == [(1, 4)]
    [total] = _samples(_families(text)["keel_serving_batch_rows"], "_sum")
    assert total.value == 4
