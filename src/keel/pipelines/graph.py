"""The DAG a pipeline function traces: nodes are step calls, edges the data between them.

While a ``@pipeline`` function body runs under :func:`tracing`, calling a step records a
:class:`Node` and returns a :class:`StepOutput` handle instead of running the step; passing
that handle to another step is the edge. Handles are placeholders: using one as a value
(``if out:``, ``out + 1``, ``len(out)``) is an error naming the step that produces it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput

if TYPE_CHECKING:
    from keel.pipelines.steps import Step

__all__ = ["Dag", "Node", "StepOutput", "Tracer", "current_tracer", "tracing"]

# A node id is a run name and a tag value: keep it short and printable.
_NODE_ID = re.compile(r"[A-Za-z_][\w\-.]{0,99}")


@dataclass(frozen=True)
class Node:
    """One step call: its id in the DAG, the step, its upstream inputs and its parameters.

    ``inputs`` maps an argument to the id of the node whose output it receives, or to a
    tuple of ids for a list of outputs (a fan-in); ``params`` holds every other argument.
    """

    id: str
    step: Step
    inputs: Mapping[str, str | tuple[str, ...]]
    params: Mapping[str, Any]

    @property
    def upstream(self) -> tuple[str, ...]:
        """Return the ids of the nodes this one reads from, without repeats, in order."""
        seen: dict[str, None] = {}
        for source in self.inputs.values():
            for node_id in (source,) if isinstance(source, str) else source:
                seen[node_id] = None
        return tuple(seen)


class StepOutput:
    """A handle on a step's future output while a pipeline is being traced."""

    __slots__ = ("_node_id", "_trace")

    def __init__(self, node_id: str, trace: int) -> None:
        self._node_id = node_id
        self._trace = trace

    @property
    def node_id(self) -> str:
        """The id of the node that produces this output."""
        return self._node_id

    def __repr__(self) -> str:
        return f"<StepOutput of {self._node_id!r}>"

    def _misuse(self, what: str) -> InvalidInput:
        return InvalidInput(
            f"the output of step {self._node_id!r} has no value while the pipeline is being "
            f"defined, so it cannot be {what}; pass it to another step and use it there"
        )

    def __bool__(self) -> bool:
        raise self._misuse("tested for truth")

    def __iter__(self) -> Iterator[Any]:
        raise self._misuse("iterated or unpacked (a step has one output; return a dict)")

    def __len__(self) -> int:
        raise self._misuse("measured with len()")

    def __getitem__(self, key: Any) -> Any:
        raise self._misuse("indexed")

    def __int__(self) -> int:
        raise self._misuse("converted to int")

    def __float__(self) -> float:
        raise self._misuse("converted to float")

    def __index__(self) -> int:
        raise self._misuse("used as an index")

    def __add__(self, other: Any) -> Any:
        raise self._misuse("used in arithmetic")

    __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __add__

    def __reduce__(self) -> Any:
        raise self._misuse("pickled")


@dataclass
class Dag:
    """The nodes of one traced pipeline, in the order they were called (a topological one)."""

    pipeline: str
    nodes: dict[str, Node] = field(default_factory=dict)

    def add(self, node: Node) -> None:
        """Add ``node``; its upstream nodes must already be in the DAG."""
        if node.id in self.nodes:
            raise InvalidInput(f"pipeline {self.pipeline!r}: two steps are named {node.id!r}")
        for source in node.upstream:
            if source not in self.nodes:
                raise InvalidInput(
                    f"pipeline {self.pipeline!r}: step {node.id!r} reads the output of "
                    f"{source!r}, which is not a step of this pipeline"
                )
        self.nodes[node.id] = node

    def validate(self) -> list[str]:
        """Return the node ids in a topological order; a cycle raises naming its steps."""
        indegree = {i: 0 for i in self.nodes}
        children: dict[str, list[str]] = {i: [] for i in self.nodes}
        for node in self.nodes.values():
            for source in node.upstream:
                if source not in self.nodes:
                    raise InvalidInput(
                        f"pipeline {self.pipeline!r}: step {node.id!r} is missing its input "
                        f"from {source!r}, which is not a step of this pipeline"
                    )
                indegree[node.id] += 1
                children[source].append(node.id)
        ready = [i for i, d in indegree.items() if d == 0]
        order = []
        while ready:
            current = ready.pop()
            order.append(current)
            for child in children[current]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        if len(order) != len(self.nodes):
            cycle = self._find_cycle({i for i, d in indegree.items() if d > 0})
            raise InvalidInput(
                f"pipeline {self.pipeline!r} has a cycle: {' -> '.join(cycle)}; a step "
                "cannot depend on its own output"
            )
        return order

    def _find_cycle(self, stuck: set[str]) -> list[str]:
        # Walk upstream from a node on the cycle until a node repeats.
        start = min(stuck)
        path, seen = [start], {start: 0}
        current = start
        while True:
            current = next(s for s in self.nodes[current].upstream if s in stuck)
            if current in seen:
                loop = [*path[seen[current] :], current]
                return loop[::-1]
            seen[current] = len(path)
            path.append(current)

    def downstream(self) -> dict[str, list[str]]:
        """Return, for each node id, the ids of the nodes that read its output."""
        children: dict[str, list[str]] = {i: [] for i in self.nodes}
        for node in self.nodes.values():
            for source in node.upstream:
                children[source].append(node.id)
        return children

    def descendants(self, node_id: str) -> set[str]:
        """Return every node that depends, directly or not, on ``node_id``."""
        children = self.downstream()
        found: set[str] = set()
        stack = list(children[node_id])
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(children[current])
        return found


class Tracer:
    """Records the step calls of one pipeline body into a :class:`Dag`."""

    _next_trace = 0

    def __init__(self, pipeline: str) -> None:
        Tracer._next_trace += 1
        self.trace = Tracer._next_trace
        self.dag = Dag(pipeline)
        self._counts: dict[str, int] = {}

    def node_id(self, name: str) -> str:
        """Return a fresh id for a call of step ``name``: the name, then name-2, name-3…"""
        count = self._counts.get(name, 0) + 1
        self._counts[name] = count
        candidate = name if count == 1 else f"{name}-{count}"
        while candidate in self.dag.nodes:  # a step literally named "fit-2" came first
            count += 1
            self._counts[name] = count
            candidate = f"{name}-{count}"
        return candidate

    def handle_source(self, step: str, arg: str, value: StepOutput) -> str:
        """Return the node id ``value`` refers to, if it belongs to this trace."""
        if value._trace != self.trace:
            raise InvalidInput(
                f"step {step!r}: argument {arg!r} is the output of {value.node_id!r} from "
                "another pipeline definition; outputs flow only within one pipeline"
            )
        return value.node_id


_current: ContextVar[Tracer | None] = ContextVar("keel_pipeline_tracer", default=None)


def current_tracer() -> Tracer | None:
    """Return the tracer of the pipeline body being traced in this context, or None."""
    return _current.get()


@contextmanager
def tracing(pipeline: str) -> Iterator[Tracer]:
    """Trace a pipeline body: step calls inside the block are recorded, not run."""
    if _current.get() is not None:
        raise InvalidInput(
            f"pipeline {pipeline!r} is called inside the definition of pipeline "
            f"{_current.get().dag.pipeline!r}; pipelines do not nest, call its steps instead"  # type: ignore[union-attr]
        )
    tracer = Tracer(pipeline)
    token = _current.set(tracer)
    try:
        yield tracer
    finally:
        _current.reset(token)


def check_node_id(name: str) -> str:
    """Return ``name`` if it can name a step, else raise ``InvalidInput``."""
    if not isinstance(name, str) or not _NODE_ID.fullmatch(name):
        raise InvalidInput(
            f"step name {name!r} must start with a letter or _, then letters, digits, "
            "_ - or . (at most 100 characters)"
        )
    return name
