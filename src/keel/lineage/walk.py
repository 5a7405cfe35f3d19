"""``lineage``: the graph around one object — where it came from and where it went.

It is a query over what the domains already record, not a table of its own: a run's
dataset inputs (``log_dataset``, a step's declared datasets; downstream from a dataset, the
runs a ``datasets.digest`` search finds), a step run's input and output digests and its
upstream steps (``keel.inputs``, ``keel.output.digest``), the run a model version was
registered from, and the versions a deployment's traffic plan routes to. So it answers the
same on SQLite, PostgreSQL and through a server (the stores' protocols).

The walk is breadth-first from the root, upstream, downstream or both, to ``depth`` hops,
and stops adding nodes past ``max_nodes`` (``truncated`` says so, as it does when a
search for the runs that touched an artifact had more than one page).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import orjson

from keel.errors import InvalidInput, NotFound
from keel.lineage.graph import LineageGraph, LineageNode, node_key

if TYPE_CHECKING:
    from keel.registry.entities import ModelVersion
    from keel.stores import Stores
    from keel.tracking.entities import Run

__all__ = ["DIRECTIONS", "get_lineage", "parse_lineage_ref"]

DIRECTIONS = ("up", "down", "both")
MAX_DEPTH = 50
DEFAULT_MAX_NODES = 500
_DIGEST_CHARS = set("0123456789abcdef")
_SEARCH_PAGE = 1000

# step-run tags (keel.pipelines.records), read here without importing the pipelines package
_KIND, _INPUTS, _OUTPUT_DIGEST, _CACHED_FROM = (
    "keel.kind",
    "keel.inputs",
    "keel.output.digest",
    "keel.cached_from",
)


def parse_lineage_ref(ref: str) -> tuple[str, str]:
    """Return ``(kind, id)`` for a reference; ``InvalidInput`` listing the accepted forms.

    Forms: ``models:/<name>/<version>`` (or ``@alias``, ``/latest``), ``runs:/<run-id>`` or a
    bare run id, ``dataset:<digest>``, ``artifact:<digest>``, ``deployment:<name>``.
    """
    forms = (
        "models:/<name>/<version>, models:/<name>@<alias>, runs:/<run-id>, a run id, "
        "dataset:<digest>, artifact:<digest> or deployment:<name>"
    )
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 1000:
        raise InvalidInput(f"a lineage reference must be one of {forms}; got {str(ref)[:80]!r}")
    ref = ref.strip()
    if ref.startswith("models:/"):
        return "model_version", ref
    if ref.startswith("runs:/"):
        return "run", _check_run_id(ref.removeprefix("runs:/").strip("/").split("/")[0], ref)
    kind, sep, rest = ref.partition(":")
    if sep and kind in ("dataset", "artifact"):
        return kind, _check_digest(rest, ref)
    if sep and kind == "deployment":
        from keel.deploy.entities import check_deployment_name

        return "deployment", check_deployment_name(rest)
    if not sep:
        return "run", _check_run_id(ref, ref)
    raise InvalidInput(f"unknown lineage reference {ref[:80]!r}; use {forms}")


def _check_run_id(value: str, ref: str) -> str:
    from keel.tracking.validation import check_id

    try:
        return check_id("run", value)
    except InvalidInput:
        raise InvalidInput(f"{ref[:80]!r} does not name a run (a 32-character id)") from None


def _check_digest(value: str, ref: str) -> str:
    if not 16 <= len(value) <= 128 or not set(value) <= _DIGEST_CHARS:
        raise InvalidInput(f"{ref[:80]!r}: a digest is 16-128 lowercase hex characters")
    return value


class _Walker:
    """One lineage query: the stores, the graph so far, and caches for scans it repeats."""

    def __init__(self, stores: Stores, graph: LineageGraph, max_nodes: int) -> None:
        self.stores = stores
        self.graph = graph
        self.max_nodes = max_nodes
        self._versions: list[ModelVersion] | None = None
        self._experiments: list[str] | None = None

    # -- nodes ---------------------------------------------------------------------------
    def _node(self, kind: str, id_: str, label: str, **attributes: object) -> str | None:
        key = node_key(kind, id_)
        if key in self.graph.nodes:
            return key
        if len(self.graph.nodes) >= self.max_nodes:
            self.graph.truncated = True
            return None
        self.graph.add_node(LineageNode(kind, id_, label, dict(attributes)))
        return key

    def run_node(self, run: Run) -> str | None:
        kind = run.tags.get(_KIND, "run")
        label = run.name or run.run_id[:12]
        if kind in ("pipeline", "step"):
            label = f"{kind} {label}"
        return self._node(
            "run",
            run.run_id,
            label,
            status=run.status.value,
            type=kind,
            experiment_id=run.experiment_id,
        )

    def version_node(self, version: ModelVersion) -> str | None:
        return self._node(
            "model_version",
            f"{version.name}/{version.version}",
            f"{version.name} v{version.version}",
            aliases=list(version.aliases),
            flavor=version.flavor,
        )

    # -- the root ------------------------------------------------------------------------
    def root(self, kind: str, id_: str) -> str:
        key: str | None
        if kind == "model_version":
            key = self.version_node(self._resolve_version(id_))
        elif kind == "run":
            key = self.run_node(self.stores.tracking.get_run(id_))
        elif kind == "deployment":
            dep = self.stores.deployments.get_deployment(id_)
            key = self._node("deployment", dep.name, dep.name, environment=dep.environment)
        else:  # dataset or artifact: known only through the runs that touched it
            key = self._node(kind, id_, f"{kind} {id_[:12]}")
        assert key is not None  # the graph is empty: the root always fits
        return key

    def _resolve_version(self, uri: str) -> ModelVersion:
        from keel.registry.uris import ModelRef, parse_model_uri

        ref = parse_model_uri(uri)
        if not isinstance(ref, ModelRef):
            raise InvalidInput(f"{uri[:80]!r} is not a registered model URI (models:/…)")
        registry = self.stores.registry
        if ref.alias is not None:
            return registry.get_version_by_alias(ref.name, ref.alias)
        if ref.version is not None:
            return registry.get_model_version(ref.name, ref.version)
        latest = registry.get_registered_model(ref.name).latest_version
        if latest == 0:
            raise NotFound(f"model {ref.name!r} has no versions yet")
        return registry.get_model_version(ref.name, latest)

    # -- edges ---------------------------------------------------------------------------
    def neighbours(self, key: str, direction: str) -> Iterator[str]:
        kind, _, id_ = key.partition(":")
        steps: dict[str, tuple[Callable[[str, str], Iterator[str]], ...]] = {
            "up": (self._up,),
            "down": (self._down,),
            "both": (self._up, self._down),
        }
        for step in steps[direction]:
            yield from step(kind, id_)

    def _edge(self, source: str | None, target: str | None, relation: str) -> str | None:
        if source is None or target is None:
            return None
        self.graph.add_edge(source, target, relation)
        return source

    def _up(self, kind: str, id_: str) -> Iterator[str]:
        me = node_key(kind, id_)
        if kind == "model_version":
            name, _, number = id_.rpartition("/")
            version = self.stores.registry.get_model_version(name, int(number))
            if version.run_id:
                run = self._get_run(version.run_id)
                if run is not None:
                    found = self._edge(self.run_node(run), me, "registered_as")
                    if found:
                        yield found
        elif kind == "deployment":
            plan = self.stores.deployments.get_deployment(id_).plan
            backends = [*plan.backends, *([plan.shadow] if plan.shadow else [])]
            for backend in backends:
                try:
                    version = self.stores.registry.get_model_version(backend.model, backend.version)
                except NotFound:
                    continue
                found = self._edge(self.version_node(version), me, "deployed_to")
                if found:
                    yield found
        elif kind == "run":
            yield from self._run_up(id_, me)
        elif kind == "artifact":
            for run in self._search(f"tags.`{_OUTPUT_DIGEST}` = '{id_}'"):
                found = self._edge(self.run_node(run), me, "produced")
                if found:
                    yield found

    def _run_up(self, run_id: str, me: str) -> Iterator[str]:
        run = self._get_run(run_id)
        if run is None:
            return
        for item in self.stores.tracking.get_inputs(run_id):
            source = self._node("dataset", item.digest, item.name, context=item.context)
            if self._edge(source, me, "input_to"):
                yield source  # type: ignore[misc]
        for digest in _input_digests(run.tags.get(_INPUTS)):
            source = self._node("artifact", digest, f"artifact {digest[:12]}")
            if self._edge(source, me, "input_to"):
                yield source  # type: ignore[misc]
        origin = run.tags.get(_CACHED_FROM)
        if origin:
            found = self._get_run(origin)
            if found is not None and self._edge(self.run_node(found), me, "cached_from"):
                yield node_key("run", origin)
        if run.parent_run_id:
            parent = self._get_run(run.parent_run_id)
            if parent is not None and self._edge(me, self.run_node(parent), "part_of"):
                yield node_key("run", parent.run_id)

    def _down(self, kind: str, id_: str) -> Iterator[str]:
        me = node_key(kind, id_)
        if kind == "model_version":
            name, _, number = id_.rpartition("/")
            for dep in self.stores.deployments.list_deployments():
                routes = [*dep.plan.backends, *([dep.plan.shadow] if dep.plan.shadow else [])]
                if any(b.model == name and str(b.version) == number for b in routes):
                    target = self._node(
                        "deployment", dep.name, dep.name, environment=dep.environment
                    )
                    if self._edge(me, target, "deployed_to"):
                        yield target  # type: ignore[misc]
        elif kind == "run":
            yield from self._run_down(id_, me)
        elif kind == "dataset":
            yield from self._dataset_down(id_, me)
        elif kind == "artifact":
            for run in self._search(f"tags.`{_INPUTS}` like '%{id_}%'"):
                target = self.run_node(run)
                if self._edge(me, target, "input_to"):
                    yield target  # type: ignore[misc]

    def _dataset_down(self, digest: str, me: str) -> Iterator[str]:
        # The digest was checked to be hex (parse_lineage_ref): safe inside the filter.
        found = self._search(f"datasets.digest = '{digest}'")
        if found and me == self.graph.root:
            self._name_dataset(me, digest, found[0].run_id)
        for run in found:
            target = self.run_node(run)
            if self._edge(me, target, "input_to"):
                yield target  # type: ignore[misc]

    def _name_dataset(self, key: str, digest: str, run_id: str) -> None:
        """Label a dataset root, known only by its digest, with the name a run logged it by."""
        names = [i.name for i in self.stores.tracking.get_inputs(run_id) if i.digest == digest]
        if names:
            node = self.graph.nodes[key]
            self.graph.nodes[key] = replace(node, label=names[0])

    def _run_down(self, run_id: str, me: str) -> Iterator[str]:
        run = self._get_run(run_id)
        if run is None:
            return
        digest = run.tags.get(_OUTPUT_DIGEST)
        if digest:
            target = self._node("artifact", digest, f"artifact {digest[:12]}")
            if self._edge(me, target, "produced"):
                yield target  # type: ignore[misc]
        for version in self._all_versions():
            if version.run_id == run_id:
                target = self.version_node(version)
                if self._edge(me, target, "registered_as"):
                    yield target  # type: ignore[misc]
        if run.tags.get(_KIND) == "pipeline":
            for child in self._search(
                f"attributes.parent_run_id = '{run_id}'", [run.experiment_id]
            ):
                source = self.run_node(child)
                if self._edge(source, me, "part_of"):
                    yield source  # type: ignore[misc]

    # -- lookups -------------------------------------------------------------------------
    def _get_run(self, run_id: str) -> Run | None:
        try:
            return self.stores.tracking.get_run(run_id)
        except NotFound:
            return None  # deleted since: the edge is left out

    def _all_versions(self) -> list[ModelVersion]:
        if self._versions is None:
            registry = self.stores.registry
            self._versions = [
                v
                for m in registry.list_registered_models()
                for v in registry.list_model_versions(m.name)
            ]
        return self._versions

    def _search(self, text: str, experiment_ids: list[str] | None = None) -> list[Run]:
        if experiment_ids is None:
            if self._experiments is None:
                self._experiments = [
                    e.experiment_id for e in self.stores.tracking.list_experiments()
                ]
            experiment_ids = self._experiments
        if not experiment_ids:
            return []
        page = self.stores.tracking.search_runs(
            experiment_ids,
            filter=text,
            order_by="attributes.start_time asc",
            max_results=_SEARCH_PAGE,
        )
        if page.next_page_token is not None:
            self.graph.truncated = True
        return list(page)


def _input_digests(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        inputs = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return []
    out: list[str] = []
    for value in inputs.values() if isinstance(inputs, dict) else ():
        out.extend(value if isinstance(value, list) else [value])
    return [d for d in dict.fromkeys(out) if isinstance(d, str)]


def get_lineage(
    ref: str,
    *,
    direction: str = "both",
    depth: int = 10,
    max_nodes: int = DEFAULT_MAX_NODES,
    stores: Stores | None = None,
) -> LineageGraph:
    """Return the lineage graph around ``ref`` (see :func:`parse_lineage_ref` for its forms).

    ``direction`` is ``up`` (what it came from), ``down`` (what came of it) or ``both``;
    ``depth`` bounds the hops from the root (1-50) and ``max_nodes`` the graph's size.
    """
    if direction not in DIRECTIONS:
        raise InvalidInput(f"direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be an integer from 1 to {MAX_DEPTH}; got {depth!r}")
    if not isinstance(max_nodes, int) or isinstance(max_nodes, bool) or max_nodes < 1:
        raise InvalidInput(f"max_nodes must be a positive integer; got {max_nodes!r}")
    kind, id_ = parse_lineage_ref(ref)
    if stores is None:
        from keel.stores import current_stores

        stores = current_stores()
    graph = LineageGraph(root="")
    walker = _Walker(stores, graph, max_nodes)
    graph.root = walker.root(kind, id_)
    # Both ways from the root, but then each node only onward: the parents of a
    # downstream node are not this object's lineage.
    queue: deque[tuple[str, int, str]] = deque()
    for way in ("up", "down") if direction == "both" else (direction,):
        queue.append((graph.root, 0, way))
    seen = {(graph.root, way) for _, _, way in queue}
    while queue:
        key, hops, way = queue.popleft()
        if hops >= depth:
            continue
        for nxt in list(walker.neighbours(key, way)):
            if (nxt, way) not in seen:
                seen.add((nxt, way))
                queue.append((nxt, hops + 1, way))
    return graph
