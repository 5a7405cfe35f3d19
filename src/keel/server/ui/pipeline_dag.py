"""A pipeline run's DAG laid out for the UI: nodes in layers by depth, edges between them.

The layout is computed here and drawn by the template as SVG, so the page needs no
graph library: a node's layer is the length of the longest path from a root to it
(every edge points to a later layer), and nodes within a layer keep the order the run
recorded them in. Edges are cubic curves from the right edge of one node to the left edge
of the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keel.pipelines.entities import StepRunInfo, step_depths

__all__ = ["DagEdge", "DagLayout", "DagNode", "layout_dag"]

NODE_W, NODE_H = 168, 44
GAP_X, GAP_Y = 56, 18
PAD = 12
MAX_LABEL = 22


@dataclass(frozen=True)
class DagNode:
    """One step run placed on the canvas: its box, label and status."""

    node: str
    label: str
    status: str
    x: int
    y: int
    layer: int


@dataclass(frozen=True)
class DagEdge:
    """An edge from an upstream node to a downstream one, as an SVG path."""

    source: str
    target: str
    path: str


@dataclass(frozen=True)
class DagLayout:
    """The whole drawing: nodes, edges and the canvas size."""

    nodes: list[DagNode]
    edges: list[DagEdge]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def _label(node: str) -> str:
    return node if len(node) <= MAX_LABEL else node[: MAX_LABEL - 1] + "…"


def layout_dag(steps: Sequence[StepRunInfo]) -> DagLayout:
    """Return the layout of ``steps`` (a pipeline run's step runs) as layered boxes."""
    layer = step_depths(steps)
    columns: dict[int, list[StepRunInfo]] = {}
    for step in steps:
        columns.setdefault(layer[step.node], []).append(step)
    nodes: dict[str, DagNode] = {}
    for col, members in sorted(columns.items()):
        for row, step in enumerate(members):
            nodes[step.node] = DagNode(
                node=step.node,
                label=_label(step.node),
                status=step.status,
                x=PAD + col * (NODE_W + GAP_X),
                y=PAD + row * (NODE_H + GAP_Y),
                layer=col,
            )
    edges = []
    for step in steps:
        target = nodes[step.node]
        for up in step.upstream:
            source = nodes.get(up)
            if source is None:
                continue
            x1, y1 = source.x + NODE_W, source.y + NODE_H // 2
            x2, y2 = target.x, target.y + NODE_H // 2
            bend = (x2 - x1) // 2
            path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
            edges.append(DagEdge(up, step.node, path))
    width = PAD * 2 + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    tallest = max((len(m) for m in columns.values()), default=1)
    height = PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y
    return DagLayout(list(nodes.values()), edges, width, height)
