"""``keel deploy render NAME --target k8s``: manifests for a deployment as it stands.

Without ``--out`` the YAML goes to stdout and nothing else does, so it pipes straight into
``kubectl apply -f -``; with ``--out DIR`` one file per deployment is replaced atomically
and a summary is printed. ``render`` is registered on the ``keel deploy`` group by
``keel.cli.deploy``.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from keel.cli._output import JsonOption, Table, err_console, out_console, plain, print_json

if TYPE_CHECKING:
    from keel.deploy.traffic import TrafficPlan

__all__ = ["Target", "load_plan", "render"]


class Target(StrEnum):
    """Where the manifests are for."""

    K8S = "k8s"


def load_plan(name: str) -> TrafficPlan:
    """Return deployment ``name``'s current traffic plan (``NotFound`` if there is none)."""
    from keel.stores import current_stores

    return current_stores().deployments.get_deployment(name).plan


def _shared_tracking_uri() -> str | None:
    """Return this process's tracking URI when pods could use it too: not a SQLite file, not
    on loopback (a pod's 127.0.0.1 is itself), and holding no password."""
    from keel.cli.server import is_loopback
    from keel.config import get_settings

    uri = get_settings().resolved_tracking_uri()
    try:
        parts = urlsplit(uri)
        password, host = parts.password, parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() == "sqlite" or password is not None:
        return None
    if not host or is_loopback(host):
        return None
    return uri


def render(
    name: Annotated[str, typer.Argument(help="The deployment, e.g. churn-prod.")],
    target: Annotated[Target, typer.Option(help="What to render for.")] = Target.K8S,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write <DIR>/<name>.yaml (replaced whole) instead of stdout."),
    ] = None,
    image: Annotated[
        str | None,
        typer.Option(help="Container image with Keel installed [default: keel-mlops:<version>]."),
    ] = None,
    namespace: Annotated[str, typer.Option(help="Kubernetes namespace.")] = "default",
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="Registry the pods read (PostgreSQL or a Keel server) [default: this one, "
            "unless it is SQLite or holds a password]."
        ),
    ] = None,
    artifact_uri: Annotated[
        str | None, typer.Option(help="Artifact store the pods read (s3://…).")
    ] = None,
    token_secret: Annotated[
        str | None, typer.Option(help="Secret holding the API token (sent as KEEL_TOKEN).")
    ] = None,
    # The default is the key's name inside the Secret, not a secret.
    token_secret_key: Annotated[str, typer.Option(help="The token's key in that Secret.")] = (
        "token"  # noqa: S107
    ),
    gateway: Annotated[str, typer.Option(help="Gateway the HTTPRoute attaches to.")] = (
        "keel-gateway"
    ),
    gateway_namespace: Annotated[
        str | None, typer.Option(help="The Gateway's namespace [default: the route's].")
    ] = None,
    hostname: Annotated[
        list[str] | None, typer.Option("--hostname", help="Host the route answers (repeatable).")
    ] = None,
    path_prefix: Annotated[str, typer.Option(help="Path prefix the route matches.")] = "/",
    min_replicas: Annotated[int, typer.Option(help="Autoscaler minimum per version.")] = 1,
    max_replicas: Annotated[int, typer.Option(help="Autoscaler maximum per version.")] = 4,
    target_cpu: Annotated[int, typer.Option(help="Average CPU utilisation to scale at (%).")] = 70,
    cpu_request: Annotated[str, typer.Option(help="CPU request per pod.")] = "250m",
    memory_request: Annotated[str, typer.Option(help="Memory request per pod.")] = "512Mi",
    cpu_limit: Annotated[str, typer.Option(help="CPU limit per pod.")] = "2",
    memory_limit: Annotated[str, typer.Option(help="Memory limit per pod.")] = "2Gi",
    as_json: JsonOption = False,
) -> None:
    """Render deployment NAME as it stands: Deployment, Service and HPA per version, and a
    Gateway API HTTPRoute splitting traffic by the deployment's weights."""
    from keel import __version__
    from keel.deploy.render_k8s import K8sOptions, render_k8s, to_yaml, write_manifests

    options = K8sOptions(
        tracking_uri=tracking_uri if tracking_uri is not None else _shared_tracking_uri(),
        artifact_uri=artifact_uri,
        token_secret=token_secret,
        token_secret_key=token_secret_key,
        gateway=gateway,
        gateway_namespace=gateway_namespace,
        hostnames=tuple(hostname or ()),
        path_prefix=path_prefix,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu_percent=target_cpu,
        cpu_request=cpu_request,
        memory_request=memory_request,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
    )
    image = image or f"keel-mlops:{__version__}"
    plan = load_plan(name)
    objects = render_k8s(plan, image=image, namespace=namespace, options=options)
    path = None
    if out is not None:
        path = write_manifests(objects, out, deployment=plan.deployment, revision=plan.revision)
    if options.tracking_uri is None and not as_json:
        err_console().print(
            "warning: no --tracking-uri, and this one is not shareable (SQLite, loopback or a "
            "password): "
            "the pods need KEEL_TRACKING_URI from the image or a shared registry",
            markup=False,
        )
    if as_json:
        print_json(
            {
                "deployment": plan.deployment,
                "revision": plan.revision,
                "target": target.value,
                "path": None if path is None else str(path),
                "objects": objects,
            }
        )
    elif path is None:
        sys.stdout.write(to_yaml(objects))
        sys.stdout.flush()
    else:
        _summary(plan, objects, path)


def _summary(plan: TrafficPlan, objects: list[dict[str, Any]], path: Path) -> None:
    table = Table(title=f"{plan.deployment} (revision {plan.revision})", title_justify="left")
    table.add_column("object", kind="id")
    table.add_column("version", kind="id")
    table.add_column("role", kind="status")
    table.add_column("weight", kind="number")
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    for obj, backend in zip(deployments, plan.all_backends(), strict=True):
        table.add_row(
            plain(obj["metadata"]["name"]),
            plain(backend.key),
            plain(backend.role.value),
            f"{backend.weight:g}%",
        )
    console = out_console()
    console.print(table)
    console.print(f"wrote {len(objects)} objects to {path}", markup=False)
    console.print(f"apply with: kubectl apply -f {path}", markup=False)
