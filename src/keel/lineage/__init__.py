"""Lineage: the graph of datasets, artifacts, runs, model versions and deployments around
one object, from what each domain records (see :mod:`keel.lineage.walk`)."""

from keel.lineage.graph import KINDS, RELATIONS, LineageEdge, LineageGraph, LineageNode
from keel.lineage.walk import DIRECTIONS, get_lineage, parse_lineage_ref

__all__ = [
    "DIRECTIONS",
    "KINDS",
    "RELATIONS",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "get_lineage",
    "parse_lineage_ref",
]
