"""What a lineage query returns: typed nodes and the edges between them, as plain data.

Edges point the way data flows: a dataset or artifact is ``input_to`` a run, a run
``produced`` an artifact and is ``registered_as`` a model version, a version is
``deployed_to`` a deployment; a step run is ``part_of`` its pipeline run and a cache hit
was ``cached_from`` the run whose output it reused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "RELATIONS", "LineageEdge", "LineageGraph", "LineageNode", "node_key"]

KINDS = ("dataset", "artifact", "run", "model_version", "deployment")
RELATIONS = ("input_to", "produced", "registered_as", "deployed_to", "part_of", "cached_from")


def node_key(kind: str, id_: str) -> str:
    """Return the key a node goes by in a graph: ``kind:id``."""
    return f"{kind}:{id_}"


@dataclass(frozen=True)
class LineageNode:
    """One object in the graph: its kind, id, a label for people, and a few attributes."""

    kind: str
    id: str
    label: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``kind:id``, unique in a graph."""
        return node_key(self.kind, self.id)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of this node."""
        return {
            "key": self.key,
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "attributes": dict(self.attributes),
        }


@dataclass(frozen=True)
class LineageEdge:
    """A directed edge ``source → target`` (node keys) with what relates them."""

    source: str
    target: str
    relation: str

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-able dict of this edge."""
        return {"source": self.source, "target": self.target, "relation": self.relation}


@dataclass
class LineageGraph:
    """The nodes reached from ``root`` and the edges found between them."""

    root: str
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)
    truncated: bool = False  # the depth or node limit stopped the walk somewhere

    def add_node(self, node: LineageNode) -> bool:
        """Add ``node``; return False if it was already there."""
        if node.key in self.nodes:
            return False
        self.nodes[node.key] = node
        return True

    def add_edge(self, source: str, target: str, relation: str) -> None:
        """Add the edge unless the graph has it already."""
        edge = LineageEdge(source, target, relation)
        if edge not in self._edge_set:
            self._edge_set.add(edge)
            self.edges.append(edge)

    @property
    def _edge_set(self) -> set[LineageEdge]:
        cache = self.__dict__.get("_edges_seen")
        if cache is None:
            cache = self.__dict__["_edges_seen"] = set(self.edges)
        return cache

    def upstream_of(self, key: str) -> list[LineageNode]:
        """The nodes with an edge into ``key``."""
        return [self.nodes[e.source] for e in self.edges if e.target == key]

    def downstream_of(self, key: str) -> list[LineageNode]:
        """The nodes ``key`` has an edge to."""
        return [self.nodes[e.target] for e in self.edges if e.source == key]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of the graph."""
        return {
            "root": self.root,
            "truncated": self.truncated,
            "nodes": [n.to_dict() for n in self.nodes.values()],
            "edges": [e.to_dict() for e in self.edges],
        }
