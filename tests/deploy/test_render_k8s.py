"""Kubernetes render: every object is valid against the real schemas, offline.

Deployment, Service and HorizontalPodAutoscaler are checked against the strict Kubernetes
1.37 JSON schemas of ``kubernetes-validate`` (unknown fields are errors); the HTTPRoute
against the Gateway API validator vendored in ``schemas/`` (see its README), run by Node.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.deploy.render_k8s import (
    K8sOptions,
    dns_label,
    render_k8s,
    route_weights,
    to_yaml,
    write_manifests,
)
from keel.deploy.traffic import Backend, Role, TrafficPlan
from keel.errors import InvalidInput

K8S_VERSION = "1.37"
SCHEMAS = Path(__file__).parent / "schemas"
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]")
IMAGE = "registry.example.com/keel:0.1.0"


def k8s_errors(obj: dict[str, Any]) -> str | None:
    """Return why the Kubernetes schema rejects ``obj``, or None if it is valid."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'/'.join(map(str, exc.absolute_path))}: {exc.message}"
    return None


def gateway_errors(objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Return the Gateway API validator's errors for each HTTPRoute (empty when valid)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the Gateway API validator runs under Node")
    done = subprocess.run(
        [node, str(SCHEMAS / "validate_httproute.mjs")],
        input=json.dumps(objects),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def plan(
    *backends: Backend, shadow: Backend | None = None, sticky: str | None = None
) -> TrafficPlan:
    return TrafficPlan("churn-prod", 7, tuple(backends), shadow=shadow, sticky_key=sticky)


CANARY = plan(
    Backend("churn", 3, 95.0, Role.STABLE),
    Backend("churn", 4, 5.0, Role.CANDIDATE),
    Backend("churn", 2, 0.0, Role.STANDBY),
)
SHADOW = plan(Backend("churn", 3, 100.0), shadow=Backend("churn", 4, 0.0, Role.SHADOW))
THIRDS = plan(
    Backend("churn", 1, 33.33, Role.STABLE),
    Backend("churn", 2, 33.33, Role.VARIANT),
    Backend("churn", 3, 33.34, Role.VARIANT),
    sticky="x-user",
)
HOSTILE = TrafficPlan(
    "Prod.Churn_2",
    1,
    (
        Backend("Churn Model ☃ $(rm -rf /) \"'; x" + "y" * 300, 1, 50.0),
        Backend("churn_a", 2, 25.0, Role.CANDIDATE),
        Backend("churn-a", 2, 25.0, Role.VARIANT),
    ),
)
PLANS = {"canary": CANARY, "shadow": SHADOW, "thirds": THIRDS, "hostile": HOSTILE}
FULL = K8sOptions(
    tracking_uri="https://keel.internal.example.com",
    artifact_uri="s3://models/keel",
    token_secret="keel-api-token",
    gateway="public-gw",
    gateway_namespace="gateways",
    hostnames=("models.example.com",),
    path_prefix="/v2",
)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("name", sorted(PLANS))
@pytest.mark.parametrize("options", [None, FULL], ids=["defaults", "full"])
def test_every_object_is_valid_against_the_kubernetes_and_gateway_api_schemas(
    name: str, options: K8sOptions | None
) -> None:
    objects = render_k8s(PLANS[name], image=IMAGE, namespace="ml-serving", options=options)
    core = [o for o in objects if o["kind"] != "HTTPRoute"]
    assert {o["kind"] for o in core} == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    for obj in core:
        assert k8s_errors(obj) is None, (obj["kind"], k8s_errors(obj))
    routes = by_kind(objects, "HTTPRoute")
    assert len(routes) == 1
    assert gateway_errors(routes) == [[]]


def test_the_schemas_reject_wrong_manifests() -> None:
    objects = render_k8s(CANARY, image=IMAGE)
    route = by_kind(objects, "HTTPRoute")[0]
    service = by_kind(objects, "Service")[0]
    deployment = by_kind(objects, "Deployment")[0]

    as_string = json.loads(json.dumps(route))
    as_string["spec"]["rules"][0]["backendRefs"][0]["weight"] = "95"
    too_heavy = json.loads(json.dumps(route))
    too_heavy["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001
    bad_path = json.loads(json.dumps(route))
    bad_path["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"
    errors = gateway_errors([as_string, too_heavy, bad_path])
    assert [e[0]["keyword"] for e in errors] == ["type", "maximum", "enum"]
    assert errors[0][0]["instancePath"] == "/spec/rules/0/backendRefs/0/weight"

    no_port = json.loads(json.dumps(service))
    del no_port["spec"]["ports"][0]["port"]
    assert "port" in (k8s_errors(no_port) or "")
    replicas_text = json.loads(json.dumps(deployment))
    replicas_text["spec"]["replicas"] = "1"
    assert "replicas" in (k8s_errors(replicas_text) or "")
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert k8s_errors(typo) is not None  # strict: an unknown field is an error


def test_one_deployment_service_and_autoscaler_per_version_and_one_route() -> None:
    objects = render_k8s(CANARY, image=IMAGE, namespace="ml")
    assert [o["kind"] for o in objects] == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    ] * 3 + ["HTTPRoute"]
    assert {o["metadata"]["namespace"] for o in objects} == {"ml"}
    deployments = by_kind(objects, "Deployment")
    versions = [
        d["spec"]["template"]["metadata"]["labels"]["keel.dev/version"] for d in deployments
    ]
    assert versions == ["3", "4", "2"]
    for deployment, service, hpa in zip(
        deployments,
        by_kind(objects, "Service"),
        by_kind(objects, "HorizontalPodAutoscaler"),
        strict=True,
    ):
        name = deployment["metadata"]["name"]
        assert service["metadata"]["name"] == hpa["metadata"]["name"] == name
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["selector"] == selector
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert {"keel.dev/deployment", "keel.dev/model", "keel.dev/version"} <= set(selector)
    roles = [d["spec"]["template"]["metadata"]["labels"]["keel.dev/role"] for d in deployments]
    assert roles == ["stable", "candidate", "standby"]


def test_route_weights_equal_the_traffic_split() -> None:
    route = by_kind(render_k8s(CANARY, image=IMAGE), "HTTPRoute")[0]
    refs = route["spec"]["rules"][0]["backendRefs"]
    names = [d["metadata"]["name"] for d in by_kind(render_k8s(CANARY, image=IMAGE), "Service")]
    assert [(r["name"], r["weight"], r["port"]) for r in refs] == [
        (names[0], 95, 8080),
        (names[1], 5, 8080),
        (names[2], 0, 8080),  # standby: warm, no traffic, a rollback is a weight change
    ]
    thirds = by_kind(render_k8s(THIRDS, image=IMAGE), "HTTPRoute")[0]
    assert [r["weight"] for r in thirds["spec"]["rules"][0]["backendRefs"]] == [3333, 3333, 3334]
    assert thirds["metadata"]["annotations"]["keel.dev/sticky-key"] == "x-user"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=16))
def test_route_weights_keep_every_share_to_a_hundredth_of_a_percent(raw: list[int]) -> None:
    if sum(raw) == 0:
        raw = [*raw[:-1], 1]
    total = sum(raw)
    backends = [Backend("m", i + 1, 100 * r / total) for i, r in enumerate(raw)]
    weights = route_weights(backends)
    assert all(isinstance(w, int) and 0 <= w <= 1_000_000 for w in weights)
    for backend, weight in zip(backends, weights, strict=True):
        assert abs(100 * weight / sum(weights) - backend.weight) <= 0.01 + 1e-9


def test_a_shadow_gets_a_mirror_of_every_request_and_no_weight() -> None:
    objects = render_k8s(SHADOW, image=IMAGE)
    route = by_kind(objects, "HTTPRoute")[0]
    rule = route["spec"]["rules"][0]
    shadow_name = by_kind(objects, "Service")[1]["metadata"]["name"]
    assert [r["weight"] for r in rule["backendRefs"]] == [100]
    assert shadow_name not in {r["name"] for r in rule["backendRefs"]}
    assert rule["filters"] == [
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": shadow_name, "port": 8080}},
        }
    ]


def test_the_container_serves_the_version_with_probes_on_the_oip_health_routes() -> None:
    deployment = by_kind(render_k8s(CANARY, image=IMAGE, options=FULL), "Deployment")[1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE
    assert [container["command"][0], *container["args"]] == [
        "keel", "serve", "models:/churn/4", "--host", "0.0.0.0", "--port", "8080", "--insecure"
    ]  # fmt: skip
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    env = {e["name"]: e for e in container["env"]}
    assert env["KEEL_TRACKING_URI"]["value"] == "https://keel.internal.example.com"
    assert env["KEEL_TOKEN"] == {
        "name": "KEEL_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "keel-api-token", "key": "token"}},
    }
    route = by_kind(render_k8s(CANARY, image=IMAGE, options=FULL), "HTTPRoute")[0]
    assert route["spec"]["parentRefs"] == [{"name": "public-gw", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["models.example.com"]
    assert route["spec"]["rules"][0]["matches"] == [
        {"path": {"type": "PathPrefix", "value": "/v2"}}
    ]


def test_no_tracking_uri_means_no_tracking_env() -> None:
    container = by_kind(render_k8s(CANARY, image=IMAGE), "Deployment")[0]["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert [e["name"] for e in container["env"]] == ["KEEL_HOME"]


def test_hostile_names_become_valid_distinct_names_and_labels() -> None:
    objects = render_k8s(HOSTILE, image=IMAGE)
    names = [o["metadata"]["name"] for o in by_kind(objects, "Deployment")]
    assert len(set(names)) == 3  # churn_a and churn-a do not meet on one name
    for obj in objects:
        assert DNS_1035.fullmatch(obj["metadata"]["name"]), obj["metadata"]["name"]
        for value in obj["metadata"]["labels"].values():
            assert LABEL_VALUE.fullmatch(value), value
    first = by_kind(objects, "Deployment")[0]
    # The exact name is kept where any text may go: the annotation and the model URI.
    assert first["metadata"]["annotations"]["keel.dev/model-name"] == HOSTILE.backends[0].model
    args = first["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[1] == f"models:/{HOSTILE.backends[0].model}/1"


@pytest.mark.parametrize(
    ("parts", "expected"),
    [(("churn-prod",), "churn-prod"), (("a", "b"), "a-b")],
)
def test_dns_label_keeps_clean_names(parts: tuple[str, ...], expected: str) -> None:
    assert dns_label(*parts) == expected


@pytest.mark.parametrize("raw", ["Churn", "3churn", "-", "", "é" * 80, "a" * 64, "a.b", "x_y"])
def test_dns_label_makes_anything_a_label(raw: str) -> None:
    label = dns_label(raw)
    assert DNS_1035.fullmatch(label), label
    assert label != raw
    assert dns_label(raw) == label  # stable


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"image": "keel:1 --privileged"}, "image"),
        ({"image": ""}, "image"),
        ({"image": "keel\n:1"}, "image"),
        ({"namespace": "Prod_NS"}, "namespace"),
        ({"namespace": "a" * 64}, "namespace"),
    ],
)
def test_bad_image_or_namespace_is_invalid_input(kwargs: dict[str, str], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        render_k8s(CANARY, **{"image": IMAGE, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"tracking_uri": "postgresql+psycopg://keel:hunter2@db/keel"}, "password"),
        ({"tracking_uri": "sqlite:///home/me/.keel/keel.db"}, "SQLite"),
        ({"tracking_uri": "https://x\n"}, "printable"),
        ({"token_secret": "Bad Secret"}, "token secret"),
        ({"token_secret_key": "a/b"}, "secret key"),
        ({"gateway": "GW"}, "gateway"),
        ({"hostnames": ("Bad Host",)}, "hostname"),
        ({"hostnames": tuple(f"h{i}.example.com" for i in range(17))}, "16"),
        ({"path_prefix": "v2"}, "path prefix"),
        ({"min_replicas": 3, "max_replicas": 2}, "replicas"),
        ({"max_replicas": 10**6}, "replicas"),
        ({"target_cpu_percent": 0}, "CPU"),
        ({"memory_limit": "lots"}, "memory limit"),
        ({"image_pull_policy": "Sometimes"}, "pull policy"),
    ],
)
def test_bad_options_are_invalid_input(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidInput, match=needle):
        K8sOptions(**kwargs)


def test_no_secret_is_ever_written() -> None:
    text = to_yaml(render_k8s(CANARY, image=IMAGE, options=FULL))
    assert "secretKeyRef" in text
    assert "hunter2" not in text


def test_written_yaml_reads_back_as_the_objects_and_is_replaced_whole(tmp_path: Path) -> None:
    objects = render_k8s(HOSTILE, image=IMAGE)
    path = write_manifests(objects, tmp_path / "out", deployment=HOSTILE.deployment, revision=1)
    assert path.parent == tmp_path / "out"
    assert DNS_1035.fullmatch(path.stem)
    text = path.read_text()
    assert text.splitlines()[0].startswith("# ")
    assert text.splitlines()[1] == "---"
    assert list(yaml.safe_load_all(text)) == objects
    assert path.stat().st_mode & 0o777 == 0o644
    smaller = render_k8s(plan(Backend("churn", 9, 100.0)), image=IMAGE)
    again = write_manifests(smaller, tmp_path / "out", deployment=HOSTILE.deployment, revision=2)
    assert again == path
    assert list(yaml.safe_load_all(path.read_text())) == smaller
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def test_a_title_cannot_break_out_of_its_comment() -> None:
    text = to_yaml([{"kind": "x"}], title="evil\nkind: Secret\r\n# more")
    assert list(yaml.safe_load_all(text)) == [{"kind": "x"}]


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "file.yaml"
    target.write_text("keep me")
    with pytest.raises(InvalidInput, match="not a folder"):
        write_manifests(render_k8s(CANARY, image=IMAGE), target, deployment="d", revision=1)
    assert target.read_text() == "keep me"


def test_a_route_lists_at_most_16_backends_dropping_standby_first() -> None:
    live = tuple(Backend("m", i, 6.25, Role.VARIANT) for i in range(1, 17))
    standby = tuple(Backend("m", i, 0.0, Role.STANDBY) for i in range(17, 20))
    objects = render_k8s(plan(*live, *standby), image=IMAGE)
    assert len(by_kind(objects, "Deployment")) == 19  # standby stays warm
    route = by_kind(objects, "HTTPRoute")[0]
    assert [r["weight"] for r in route["spec"]["rules"][0]["backendRefs"]] == [625] * 16
    assert gateway_errors([route]) == [[]]
    too_many = tuple(Backend("m", i, 100 / 17) for i in range(1, 18))
    with pytest.raises(InvalidInput, match="at most 16"):
        render_k8s(plan(*too_many), image=IMAGE)
