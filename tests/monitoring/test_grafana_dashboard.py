"""The shipped Grafana dashboard: valid, and every PromQL metric is one Keel exports."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from monitor_live_support import Home, build_home, deploy, keel_home, oip_body
from prometheus_client.parser import text_string_to_metric_families

from keel.monitoring.figures import FIGURE_NAMES

_METRIC = re.compile(r"\b((?:keel|process)_[a-z0-9_]+)\b")


def dashboard() -> dict[str, Any]:
    text = resources.files("keel.monitoring").joinpath("grafana/keel-dashboard.json").read_text()
    return json.loads(text)


def expressions(doc: dict[str, Any]) -> list[str]:
    out = []
    for panel in doc["panels"]:
        out += [t["expr"] for t in panel.get("targets", [])]
    for variable in doc["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            out.append(query["query"])
    return out


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    doc = dashboard()
    assert 36 <= doc["schemaVersion"] <= 41
    assert doc["uid"] == "keel-deployments"
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(p["title"] for p in doc["panels"]).lower()
    for word in ("request rate", "error rate", "latency", "batch size", "queue depth", "drift"):
        assert word in titles
    for panel in doc["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")")
    latency = " ".join(expressions(doc))
    for q in ("0.5", "0.95", "0.99"):
        quantile = f"histogram_quantile({q}, sum by (le, deployment) (rate("
        assert f"{quantile}keel_deployment_request_seconds_bucket" in latency


def test_monitor_gauges_are_figures_keel_computes() -> None:
    names = {m for e in expressions(dashboard()) for m in _METRIC.findall(e)}
    monitor = {n for n in names if n.startswith("keel_monitor_")}
    assert monitor <= {f"keel_monitor_{f}" for f in FIGURE_NAMES}
    assert len(monitor) >= 20  # every figure family has a panel


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return build_home(tmp_path_factory.mktemp("grafana-home"))


def _scraped(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples}
    return names


def test_every_expression_names_a_metric_a_live_server_exports(home: Home) -> None:
    from tests.live_server import running_server

    doc = dashboard()
    with keel_home(home.path), running_server(home.path) as url:
        with httpx.Client(base_url=url, timeout=30.0) as client:
            deploy(client, "grafana-prod", home.X)
            for start in range(0, 40, 4):
                assert client.post("/v2/models/grafana-prod/infer",
                                   json=oip_body(home.X, start, 4)).status_code == 200  # fmt: skip
            bad = client.post("/v2/models/grafana-prod/infer", json={"inputs": []})
            assert bad.status_code == 400
            scrape = client.get("/metrics")
            assert scrape.status_code == 200
    exported = _scraped(scrape.text)
    wanted = {m for e in expressions(doc) for m in _METRIC.findall(e)}
    served = {m for m in wanted if not m.startswith("keel_monitor_")}
    missing = sorted(served - exported)
    assert not missing, f"the dashboard names metrics keel server does not export: {missing}"
    assert "keel_deployment_requests_total" in exported


def test_the_dashboard_file_is_packaged_data() -> None:
    path = Path(str(resources.files("keel.monitoring").joinpath("grafana/keel-dashboard.json")))
    assert path.is_file()


def test_the_cli_prints_and_writes_the_dashboard(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from keel.cli.main import app

    printed = CliRunner().invoke(app, ["monitor", "grafana-dashboard"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout) == dashboard()
    target = tmp_path / "dash.json"
    written = CliRunner().invoke(app, ["monitor", "grafana-dashboard", "-o", str(target)])
    assert written.exit_code == 0, written.output
    assert json.loads(target.read_text()) == dashboard()
    missing = CliRunner().invoke(
        app, ["monitor", "grafana-dashboard", "-o", str(tmp_path / "no" / "d.json")]
    )
    assert missing.exit_code == 2
