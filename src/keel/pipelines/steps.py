"""``@keel.step``: a function made a step; calling it in a pipeline body adds a DAG node.

As in Prefect's ``@task``, the decorator works bare or with options, keeps the function's
signature, holds its options in one immutable object (``with_options`` returns a copy) and
validates the definition when it runs. Calling a step inside a ``@pipeline`` body records a
node and returns a :class:`~keel.pipelines.graph.StepOutput`; anywhere else it just runs.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from keel.errors import InvalidInput
from keel.pipelines.graph import Node, StepOutput, check_node_id, current_tracer
from keel.pipelines.params import bind_defaults, check_param, type_hints

__all__ = ["Step", "StepOptions", "check_function", "import_object", "resolves_to", "step"]

_KINDS = inspect.Parameter
_UNSTORABLE_RETURNS = ("Iterator", "Generator", "AsyncIterator", "AsyncGenerator", "Coroutine")


@dataclass(frozen=True)
class StepOptions:
    """How a step runs: retries with exponential backoff, a timeout, caching, inputs.

    ``inputs`` are files or folders the step reads besides its arguments; their BLAKE3
    digests join the cache key, so changing one re-runs the step. ``cpus``, ``gpus`` and
    ``memory`` (bytes) are what the step needs from a Ray cluster (``executor="ray"``); the
    local executor runs one step per worker process and does not reserve them.
    """

    name: str
    retries: int = 0
    retry_delay: float = 1.0
    backoff: float = 2.0
    timeout: float | None = None
    no_cache: bool = False
    inputs: tuple[str, ...] = ()
    cpus: float | None = None
    gpus: float | None = None
    memory: int | None = None

    def __post_init__(self) -> None:
        check_node_id(self.name)
        where = f"step {self.name!r}"
        if type(self.retries) is not int or not 0 <= self.retries <= 100:
            raise InvalidInput(f"{where}: retries must be an integer from 0 to 100")
        for label, value, low in (
            ("retry_delay", self.retry_delay, 0),
            ("backoff", self.backoff, 1),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (low <= value <= 3600)
            ):
                raise InvalidInput(f"{where}: {label} must be a number from {low} to 3600")
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not 0 < self.timeout <= 7 * 86400
        ):
            raise InvalidInput(f"{where}: timeout must be a positive number of seconds (≤ 7 days)")
        if not isinstance(self.no_cache, bool):
            raise InvalidInput(f"{where}: no_cache must be True or False")
        if isinstance(self.inputs, str) or not all(
            isinstance(p, str) and p.strip() for p in self.inputs
        ):
            raise InvalidInput(f"{where}: inputs must be a list of file or folder paths")
        for label, value, top in (("cpus", self.cpus, 1024), ("gpus", self.gpus, 64)):
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 <= value <= top
            ):
                raise InvalidInput(f"{where}: {label} must be a number from 0 to {top}")
        if self.memory is not None and (
            type(self.memory) is not int or not 0 < self.memory <= 1 << 50
        ):
            raise InvalidInput(f"{where}: memory must be a positive number of bytes")

    def retry_wait(self, attempt: int) -> float:
        """Return the seconds to wait before retry number ``attempt`` (1 for the first)."""
        return min(self.retry_delay * self.backoff ** (attempt - 1), 3600.0)


class Step:
    """A function made a pipeline step; call it in a ``@pipeline`` body to add a node."""

    def __init__(self, fn: Callable[..., Any], options: StepOptions) -> None:
        check_function(fn, "step", options.name)
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise InvalidInput(
                f"step {options.name!r} is a generator function: its output cannot be stored; "
                "return a list, DataFrame or array instead of yielding"
            )
        if inspect.iscoroutinefunction(fn):
            raise InvalidInput(f"step {options.name!r} is async; steps are plain functions")
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        for param in self.signature.parameters.values():
            if param.kind in (_KINDS.VAR_POSITIONAL, _KINDS.VAR_KEYWORD):
                raise InvalidInput(
                    f"step {options.name!r} takes *{param.name}; name each input instead, so "
                    "every input is recorded and hashed"
                )
        self.hints = type_hints(fn)
        returns = self.hints.get("return")
        origin = getattr(returns, "__origin__", returns)
        if getattr(origin, "__name__", "") in _UNSTORABLE_RETURNS:
            raise InvalidInput(
                f"step {options.name!r} is annotated to return {origin.__name__}, which cannot "
                "be stored; return the values themselves (a list, DataFrame, array…)"
            )
        functools.update_wrapper(self, fn)

    @property
    def name(self) -> str:
        """The step's name (its node id in a DAG, numbered when called again)."""
        return self.options.name

    def __repr__(self) -> str:
        return f"<Step {self.name!r}>"

    def with_options(self, **changes: Any) -> Step:
        """Return a copy of this step with some options changed (see ``StepOptions``)."""
        if "inputs" in changes and changes["inputs"] is not None:
            changes["inputs"] = tuple(changes["inputs"])
        try:
            options = dataclasses.replace(self.options, **changes)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name!r}: {exc}") from None
        return Step(self.fn, options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = current_tracer()
        if tracer is None:
            return self.fn(*args, **kwargs)
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"step {self.name!r}: {exc}") from None
        node_id = tracer.node_id(self.name)
        inputs: dict[str, str | tuple[str, ...]] = {}
        params: dict[str, Any] = {}
        for arg, value in bind_defaults(self.signature, bound.arguments).items():
            if isinstance(value, StepOutput):
                inputs[arg] = tracer.handle_source(node_id, arg, value)
            elif isinstance(value, list | tuple) and any(isinstance(v, StepOutput) for v in value):
                if not all(isinstance(v, StepOutput) for v in value):
                    raise InvalidInput(
                        f"step {node_id!r}: argument {arg!r} mixes step outputs and constants; "
                        "pass a list of step outputs only"
                    )
                inputs[arg] = tuple(tracer.handle_source(node_id, arg, v) for v in value)
            else:
                hint = self.hints.get(arg, inspect.Parameter.empty)
                params[arg] = check_param(f"step {node_id!r}", arg, value, hint)
        missing = [
            p.name
            for p in self.signature.parameters.values()
            if p.name not in inputs and p.name not in params
        ]
        if missing:
            raise InvalidInput(f"step {node_id!r} is missing input {', '.join(map(repr, missing))}")
        tracer.dag.add(Node(node_id, self, inputs, params))
        return StepOutput(node_id, tracer.trace)

    def __reduce__(self) -> Any:
        # Workers import a module-level step by name (cheap, and the step is the object the
        # module defines); a step made inside a function travels by value (cloudpickle).
        if resolves_to(self.fn.__module__, self.fn.__qualname__, self):
            return (import_object, (self.fn.__module__, self.fn.__qualname__))
        return (Step, (self.fn, self.options))


@overload
def step(fn: Callable[..., Any], /) -> Step: ...
@overload
def step(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    backoff: float = 2.0,
    timeout: float | None = None,
    no_cache: bool = False,
    inputs: Sequence[str] = (),
    cpus: float | None = None,
    gpus: float | None = None,
    memory: int | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...
def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 1.0,
    backoff: float = 2.0,
    timeout: float | None = None,
    no_cache: bool = False,
    inputs: Sequence[str] = (),
    cpus: float | None = None,
    gpus: float | None = None,
    memory: int | None = None,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Return the function made a :class:`Step` (use bare, ``@step``, or ``@step(...)``)."""

    def decorate(f: Callable[..., Any]) -> Step:
        check_function(f, "step", name)
        options = StepOptions(
            name=f.__name__ if name is None else name,
            retries=retries,
            retry_delay=retry_delay,
            backoff=backoff,
            timeout=timeout,
            no_cache=no_cache,
            inputs=(inputs,) if isinstance(inputs, str) else tuple(inputs),
            cpus=cpus,
            gpus=gpus,
            memory=memory,
        )
        return Step(f, options)

    return decorate if fn is None else decorate(fn)


def check_function(fn: Any, kind: str, name: str | None) -> None:
    """Raise ``InvalidInput`` unless ``fn`` is a plain function not yet decorated."""
    if isinstance(fn, Step) or type(fn).__name__ == "Pipeline":
        raise InvalidInput(f"{fn!r} is already a step or pipeline; decorate the function once")
    if not inspect.isfunction(fn):
        label = name or getattr(fn, "__name__", type(fn).__name__)
        raise InvalidInput(f"{kind} {label!r} must be a plain function, got {type(fn).__name__}")


def resolves_to(module: str, qualname: str, obj: object) -> bool:
    """Return whether importing ``module.qualname`` gives back ``obj`` itself."""
    if "<" in qualname:  # defined inside a function: not importable by name
        return False
    try:
        return import_object(module, qualname) is obj
    except (ImportError, AttributeError):
        return False


def import_object(module: str, qualname: str) -> Any:
    """Return ``module.qualname``, importing the module (how workers find steps)."""
    value: Any = importlib.import_module(module)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value
