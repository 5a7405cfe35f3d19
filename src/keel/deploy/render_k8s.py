"""Kubernetes manifests for a deployment as it stands (``keel deploy render --target k8s``).

Every backend of the :class:`~keel.deploy.traffic.TrafficPlan` (live, standby and shadow)
becomes a Deployment running ``keel serve models:/<model>/<version>``, probed on the Open
Inference Protocol health routes, with its own Service and HorizontalPodAutoscaler. One
Gateway API HTTPRoute splits requests between the version Services with ``backendRefs``
weights equal to the plan's split; standby versions stay at weight 0 (warm, so a rollback
is a weight change), and a shadow receives a mirror of every request (``RequestMirror``),
its answers discarded. The version Services are what make the split exact: a single
Service over every version's pods would split by pod count, not by weight. Through the
Gateway, clients call what ``keel serve`` answers in every pod: ``/v2/models/<model>/infer``
(each version of a model answers to the model's name) or MLflow's ``/invocations``.

Names are DNS-1035 labels (what a Service name must be, and valid for every other kind):
model and deployment names are lower-cased, anything else becomes '-', and a short hash of
the exact identity keeps two different inputs from meeting on one name. No secret is ever
written into a manifest: a token comes from a Secret by name (``secretKeyRef``), and a
tracking URI holding a password is refused.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from keel.deploy.k8s_options import (
    SERVE_PORT,
    K8sOptions,
    check_image,
    check_namespace,
    dns_label,
    hashed_label,
    label_value,
)
from keel.deploy.traffic import Backend, Role, TrafficPlan
from keel.errors import InvalidInput, require

MAX_BACKEND_REFS = 16  # the Gateway API's limit per HTTPRoute rule

__all__ = ["K8sOptions", "dns_label", "render_k8s", "route_weights", "to_yaml", "write_manifests"]


def route_weights(backends: Sequence[Backend]) -> list[int]:
    """Return the HTTPRoute weights (integers) that split traffic as ``backends`` do.

    Whole percentages stay as they are (5 and 95); otherwise weights are basis points
    that sum to 10,000, rounded by largest remainder so the shares are exact to 0.01%.
    """
    if all(float(b.weight).is_integer() for b in backends):
        return [int(b.weight) for b in backends]
    scaled = [b.weight * 100 for b in backends]
    floors = [int(s) for s in scaled]
    short = round(sum(scaled)) - sum(floors)
    order = sorted(range(len(scaled)), key=lambda i: scaled[i] - floors[i], reverse=True)
    for i in order[: max(short, 0)]:
        floors[i] += 1
    return floors


def render_k8s(
    plan: TrafficPlan, *, image: str, namespace: str = "default", options: K8sOptions | None = None
) -> list[dict[str, Any]]:
    """Return the manifests for ``plan``: per backend a Deployment, Service and HPA, then
    the HTTPRoute, as plain dicts ready for YAML."""
    options = options or K8sOptions()
    check_image(image)
    check_namespace(namespace)
    shadow = plan.shadow or next((b for b in plan.backends if b.role is Role.SHADOW), None)
    routed = _routed(plan, shadow)
    objects: list[dict[str, Any]] = []
    for backend in plan.all_backends():
        name = _backend_name(plan.deployment, backend)
        labels = _labels(plan, backend)
        objects.append(_deployment(name, namespace, labels, plan, backend, image, options))
        objects.append(_service(name, namespace, labels))
        objects.append(_autoscaler(name, namespace, labels, options))
    objects.append(_route(plan, namespace, routed, shadow, options))
    return objects


def _routed(plan: TrafficPlan, shadow: Backend | None) -> list[Backend]:
    """Return the backends the HTTPRoute lists: live ones, then standby while they fit."""
    routed = [b for b in plan.backends if b != shadow]
    if len(routed) > MAX_BACKEND_REFS:
        # A rule takes at most 16 backendRefs; a standby left out keeps its Deployment and
        # Service (still warm), it is only not pre-listed at weight 0.
        routed = [b for b in routed if b.weight > 0]
    if len(routed) > MAX_BACKEND_REFS:
        raise InvalidInput(
            f"deployment {plan.deployment!r} splits traffic between {len(routed)} versions; "
            f"a Gateway API HTTPRoute rule takes at most {MAX_BACKEND_REFS}"
        )
    return routed


def _backend_name(deployment: str, backend: Backend) -> str:
    # Always hashed: "a-b" + "c" and "a" + "b-c" would otherwise both be a-b-c-v1.
    parts = (deployment, backend.model, f"v{backend.version}")
    clean = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    return hashed_label(clean if clean[:1].isalpha() else f"k-{clean}", parts)


def _labels(plan: TrafficPlan, backend: Backend) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "keel-model-server",
        "app.kubernetes.io/managed-by": "keel",
        "keel.dev/deployment": label_value(plan.deployment),
        "keel.dev/model": label_value(backend.model),
        "keel.dev/version": str(backend.version),
    }


def _metadata(
    name: str, namespace: str, labels: dict[str, str], **annotations: str
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = {f"keel.dev/{k.replace('_', '-')}": v for k, v in annotations.items()}
    return meta


def _deployment(
    name: str,
    namespace: str,
    labels: dict[str, str],
    plan: TrafficPlan,
    backend: Backend,
    image: str,
    options: K8sOptions,
) -> dict[str, Any]:
    health = {"httpGet": {"path": "/v2/health/live", "port": "http"}}
    pod_labels = {**labels, "keel.dev/role": backend.role.value}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(
            name,
            namespace,
            pod_labels,
            deployment_name=plan.deployment,
            model_name=backend.model,
            revision=str(plan.revision),
            weight=f"{backend.weight:g}",
        ),
        "spec": {
            # The HPA owns the replica count from here on; this is the first rollout's.
            "replicas": options.min_replicas,
            "selector": {"matchLabels": labels},
            # A new pod must be ready before an old one goes: no request finds no server.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(SERVE_PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": _pod_spec(labels, backend, image, options, health),
            },
        },
    }


def _pod_spec(
    labels: dict[str, str],
    backend: Backend,
    image: str,
    options: K8sOptions,
    health: dict[str, Any],
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "model-server",
        "image": image,
        "imagePullPolicy": options.image_pull_policy,
        # A list, never a shell line: a model name cannot inject a command. --insecure
        # because the pod must listen beyond loopback; the Service and Gateway front it.
        "command": ["keel"],
        "args": [
            "serve",
            f"models:/{backend.model}/{backend.version}",
            "--host",
            "0.0.0.0",  # noqa: S104 - inside the pod, reached only through the Service
            "--port",
            str(SERVE_PORT),
            "--insecure",
        ],
        "ports": [{"name": "http", "containerPort": SERVE_PORT, "protocol": "TCP"}],
        "env": _env(options),
        "resources": {
            "requests": {"cpu": options.cpu_request, "memory": options.memory_request},
            "limits": {"cpu": options.cpu_limit, "memory": options.memory_limit},
        },
        # keel serve opens its port only once the version is loaded and warmed, so the
        # startup probe's budget (5 minutes) is the load time allowed.
        "startupProbe": {**health, "periodSeconds": 5, "failureThreshold": 60},
        "livenessProbe": {**health, "periodSeconds": 10, "failureThreshold": 3},
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        # Endpoints drop the pod before it stops taking requests.
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "keel-home", "mountPath": "/var/lib/keel"}],
    }
    return {
        "containers": [container],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 30,
        "automountServiceAccountToken": False,
        # The root filesystem is read-only; Keel's home (caches, config) lives here.
        "volumes": [{"name": "keel-home", "emptyDir": {}}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": labels},
            }
        ],
    }


def _env(options: K8sOptions) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": "KEEL_HOME", "value": "/var/lib/keel"}]
    if options.tracking_uri:
        env.append({"name": "KEEL_TRACKING_URI", "value": options.tracking_uri})
    if options.artifact_uri:
        env.append({"name": "KEEL_ARTIFACT_URI", "value": options.artifact_uri})
    if options.token_secret:
        ref = {"name": options.token_secret, "key": options.token_secret_key}
        env.append({"name": "KEEL_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    return env


def _service(name: str, namespace: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(labels),
            "ports": [
                {"name": "http", "port": SERVE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def _autoscaler(
    name: str, namespace: str, labels: dict[str, str], options: K8sOptions
) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name, namespace, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": options.min_replicas,
            "maxReplicas": options.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": options.target_cpu_percent,
                        },
                    },
                }
            ],
        },
    }


def _route(
    plan: TrafficPlan,
    namespace: str,
    routed: Sequence[Backend],
    shadow: Backend | None,
    options: K8sOptions,
) -> dict[str, Any]:
    refs = [
        {"name": _backend_name(plan.deployment, b), "port": SERVE_PORT, "weight": w}
        for b, w in zip(routed, route_weights(routed), strict=True)
    ]
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": options.path_prefix}}],
        "backendRefs": refs,
    }
    if shadow is not None:
        mirror = {"name": _backend_name(plan.deployment, shadow), "port": SERVE_PORT}
        rule["filters"] = [{"type": "RequestMirror", "requestMirror": {"backendRef": mirror}}]
    parent: dict[str, Any] = {"name": options.gateway}
    if options.gateway_namespace:
        parent["namespace"] = options.gateway_namespace
    spec: dict[str, Any] = {"parentRefs": [parent], "rules": [rule]}
    if options.hostnames:
        spec["hostnames"] = list(options.hostnames)
    labels = {
        "app.kubernetes.io/name": "keel-model-server",
        "app.kubernetes.io/managed-by": "keel",
        "keel.dev/deployment": label_value(plan.deployment),
    }
    annotations = {"deployment_name": plan.deployment, "revision": str(plan.revision)}
    if plan.sticky_key:
        # Gateway API weights pick per request; sticky A/B assignment by key needs the
        # Keel router (keel server), so the manifest says what it cannot do.
        annotations["sticky_key"] = plan.sticky_key
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": _metadata(dns_label(plan.deployment), namespace, labels, **annotations),
        "spec": spec,
    }


def to_yaml(objects: Iterable[dict[str, Any]], *, title: str | None = None) -> str:
    """Return ``objects`` as one multi-document YAML text (``kubectl apply -f`` reads it)."""
    yaml: Any = require("yaml", "k8s")

    class Dumper(yaml.SafeDumper):  # type: ignore[misc,name-defined]
        def ignore_aliases(self, data: Any) -> bool:
            return True  # shared dicts (labels, probes) written out, not as &id001 anchors

    # json.dumps keeps a hostile title (newlines, '#') on one comment line.
    head = f"# {json.dumps(title)}\n" if title else ""
    docs = [
        yaml.dump(o, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
        for o in objects
    ]
    return head + "---\n" + "---\n".join(docs)


def write_manifests(
    objects: Sequence[dict[str, Any]], out_dir: Path, *, deployment: str, revision: int
) -> Path:
    """Return the path of the one YAML file written into ``out_dir`` for ``deployment``.

    The file is replaced atomically (temporary name, then rename), so a reader or a
    ``kubectl apply`` never sees half of it, and a version left out of the plan leaves no
    stale file behind.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInput(f"--out {out_dir} is a file, not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dns_label(deployment)}.yaml"
    text = to_yaml(
        objects, title=f"Keel deployment {deployment} at revision {revision}: keel deploy render"
    )
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide manifests (no secret is in them)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
