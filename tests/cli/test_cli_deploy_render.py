"""``keel deploy render``: manifests of a real deployment from the store, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import Cli, fresh_process, one_error_line
from typer.testing import Result

from keel.stores import current_stores


def run(*args: str) -> Result:
    return Cli()("deploy", "render", *args)


@pytest.fixture
def churn(home: Path) -> str:
    """Register churn v1..v3 and deploy them split 70/30 with v1 warm as standby."""
    registry = current_stores().registry
    for _ in range(3):
        registry.create_model_version(
            "churn",
            {"source": "mem://x", "artifact_digest": "0" * 64, "flavor": "sklearn",
             "created_by": "test"},
        )  # fmt: skip
    store = current_stores().deployments
    store.create_deployment("churn-prod", "models:/churn/1", environment="prod")
    store.set_traffic("churn-prod", {"churn/2": 70, "churn/3": 30})
    return "churn-prod"


def test_render_prints_yaml_only_with_the_deployments_split(churn: str) -> None:
    result = run(churn, "--image", "reg.example.com/keel:1", "--tracking-uri", "https://k.example")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in docs].count("Deployment") == 3
    route = docs[-1]
    assert route["kind"] == "HTTPRoute"
    refs = route["spec"]["rules"][0]["backendRefs"]
    versions = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]["keel.dev/version"]
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert sorted((versions[r["name"]], r["weight"]) for r in refs) == [
        ("1", 0),
        ("2", 70),
        ("3", 30),
    ]
    container = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "reg.example.com/keel:1"


def test_render_out_writes_one_file_and_a_summary(churn: str, tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    result = run(churn, "--target", "k8s", "--out", str(out), "--namespace", "ml")
    assert result.exit_code == 0, result.output
    path = out / "churn-prod.yaml"
    assert f"wrote 10 objects to {path}" in result.stdout
    assert "churn/2" in result.stdout
    assert "70%" in result.stdout
    docs = list(yaml.safe_load_all(path.read_text()))
    assert {d["metadata"]["namespace"] for d in docs} == {"ml"}
    # The home's SQLite file cannot be shared with pods: no env for it, and a warning.
    env = docs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "KEEL_TRACKING_URI" not in {e["name"] for e in env}
    assert "no --tracking-uri" in result.stderr


def test_render_json_for_scripts(churn: str) -> None:
    result = run(churn, "--json", "--token-secret", "keel-token", "--hostname", "m.example.com")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["deployment"] == churn
    assert document["revision"] >= 2
    assert document["path"] is None
    route = document["objects"][-1]
    assert route["spec"]["hostnames"] == ["m.example.com"]
    env = document["objects"][0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {
        "name": "KEEL_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "keel-token", "key": "token"}},
    } in env


def test_an_unknown_deployment_is_exit_2(home: Path) -> None:
    result = run("nope")
    assert result.exit_code == 2
    assert "nope" in one_error_line(result)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--namespace", "Bad_NS"], "namespace"),
        (["--image", "keel 1"], "image"),
        (["--tracking-uri", "postgresql://u:secret@db/keel"], "password"),
        (["--min-replicas", "5", "--max-replicas", "2"], "replicas"),
        (["--memory-limit", "lots"], "memory limit"),
        (["--hostname", "Not A Host"], "hostname"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(churn: str, args: list[str], needle: str) -> None:
    result = run(churn, *args)
    assert result.exit_code == 2, result.output
    assert needle in one_error_line(result)


def test_a_refused_password_is_not_echoed(churn: str) -> None:
    result = run(churn, "--tracking-uri", "postgresql://u:s3cr3t@db/keel")
    assert result.exit_code == 2
    assert "s3cr3t" not in result.output


def test_an_unknown_target_is_a_usage_error(churn: str) -> None:
    result = run(churn, "--target", "nomad")
    assert result.exit_code == 2
    assert "nomad" in result.stderr


def test_out_on_a_file_is_exit_2_and_leaves_it(churn: str, tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("mine")
    result = run(churn, "--out", str(target))
    assert result.exit_code == 2
    assert "not a folder" in one_error_line(result)
    assert target.read_text() == "mine"


@pytest.mark.parametrize(
    ("uri", "shared"),
    [
        ("postgresql+psycopg://keel@db.internal:5432/keel", True),
        ("https://keel.example.com", True),
        ("postgresql+psycopg://keel:pw@db.internal/keel", False),  # a password
        ("postgresql+psycopg://keel@127.0.0.1:5432/keel", False),  # the pod's own loopback
        ("http://localhost:5000", False),
        ("http://[::1]:5000", False),
        ("sqlite:////data/keel.db", False),
    ],
)
def test_the_default_tracking_uri_is_this_one_only_when_pods_can_share_it(
    home: Path, monkeypatch: pytest.MonkeyPatch, uri: str, shared: bool
) -> None:
    from keel.cli.deploy_render import _shared_tracking_uri

    monkeypatch.setenv("KEEL_TRACKING_URI", uri)
    fresh_process()
    assert _shared_tracking_uri() == (uri if shared else None)


def test_the_plan_is_read_through_every_backend(backend: Any) -> None:
    # SQLite, PostgreSQL (when reachable) and a live Keel server over HTTP.
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    import keel
    from keel.cli.deploy_render import load_plan
    from keel.deploy.render_k8s import render_k8s
    from keel.errors import NotFound

    # Real versions: a server loads and warms a version before it takes traffic.
    X = np.random.default_rng(1).normal(size=(20, 2))
    for c in (1.0, 2.0):
        with keel.start_run(experiment="render") as run:
            model = LogisticRegression(C=c).fit(X, X[:, 0] > 0)
            run.log_model(model, "model", input_example=X[:2])
        keel.register_model(f"runs:/{run.run_id}/model", "churn")
    store = current_stores().deployments
    store.create_deployment("churn-prod", "models:/churn/1")
    store.set_traffic("churn-prod", {"churn/1": 80, "churn/2": 20})
    plan = load_plan("churn-prod")
    route = render_k8s(plan, image="keel:1")[-1]
    assert [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]] == [80, 20]
    with pytest.raises(NotFound):
        load_plan("ghost")
