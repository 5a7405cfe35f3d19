"""``keel lineage REF``: where a model version, run, artifact, dataset or deployment came
from and what came of it, as a tree or as JSON."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from keel.cli._output import JsonOption, out_console, print_json

__all__ = ["lineage"]

_ARROWS = {"up": "◀", "down": "▶"}


def lineage(
    ref: Annotated[
        str,
        typer.Argument(
            help="models:/NAME/VERSION (or @ALIAS), runs:/RUN_ID or a run id, "
            "dataset:DIGEST, artifact:DIGEST or deployment:NAME."
        ),
    ],
    direction: Annotated[
        str, typer.Option("--direction", "-d", help="up (sources), down (results) or both.")
    ] = "both",
    depth: Annotated[int, typer.Option(help="Hops from REF to follow (1-50).")] = 10,
    max_nodes: Annotated[int, typer.Option(help="Stop adding nodes past this many.")] = 500,
    as_json: JsonOption = False,
) -> None:
    """Show the lineage of REF: datasets, artifacts, runs, model versions, deployments."""
    import keel

    graph = keel.get_lineage(ref, direction=direction, depth=depth, max_nodes=max_nodes)
    if as_json:
        print_json(graph.to_dict())
        return
    root = graph.nodes[graph.root]
    tree = Tree(Text.assemble((root.label, "bold"), " ", (root.key, "dim")))
    for way, label in (("up", "came from"), ("down", "led to")):
        if direction not in (way, "both"):
            continue
        branch = tree.add(Text(label, style="bold"))
        _grow(branch, graph, graph.root, way, seen={graph.root})
    console = out_console()
    console.print(tree)
    if graph.truncated:
        console.print("[yellow]the graph was cut short: raise --max-nodes for the rest[/]")


def _grow(branch: Tree, graph: object, key: str, way: str, seen: set[str]) -> None:
    edges = [
        e
        for e in graph.edges  # type: ignore[attr-defined]
        if (e.target == key if way == "up" else e.source == key)
    ]
    for edge in edges:
        other = edge.source if way == "up" else edge.target
        node = graph.nodes[other]  # type: ignore[attr-defined]
        text = Text.assemble(
            f"{_ARROWS[way]} {edge.relation} ", (node.label, "bold"), " ", (node.key, "dim")
        )
        if other in seen:
            branch.add(text + Text(" (above)", style="dim"))
            continue
        seen.add(other)
        _grow(branch.add(text), graph, other, way, seen)
