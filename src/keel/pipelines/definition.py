"""``@keel.pipeline``: a function whose traced body is a DAG of steps; execution is the engine's.

Like Prefect's ``@flow``, the decorator works bare or with options and validates the
definition when it runs: when every parameter has a default the body is traced at once, so
a missing input or a bad parameter fails at import. Calling a pipeline runs it; ``.run``
takes options. Steps live in :mod:`keel.pipelines.steps`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from keel.errors import InvalidInput
from keel.pipelines.graph import Dag, check_node_id, current_tracer, tracing
from keel.pipelines.params import bind_defaults, check_param, coerce_text, type_hints
from keel.pipelines.steps import (
    Step,
    StepOptions,
    check_function,
    import_object,
    resolves_to,
    step,
)

if TYPE_CHECKING:
    from keel.pipelines.entities import PipelineRunInfo

__all__ = ["Pipeline", "PipelineOptions", "Step", "StepOptions", "pipeline", "step"]

_KINDS = inspect.Parameter


@dataclass(frozen=True)
class PipelineOptions:
    """A pipeline's name and defaults for its runs."""

    name: str
    no_cache: bool = False
    max_workers: int | None = None


class Pipeline:
    """A function whose body, traced, is a DAG of steps; call it (or ``.run``) to run it."""

    def __init__(self, fn: Callable[..., Any], options: PipelineOptions) -> None:
        check_function(fn, "pipeline", options.name)
        check_node_id(options.name)
        self.fn = fn
        self.options = options
        self.signature = inspect.signature(fn)
        self.hints = type_hints(fn)
        for param in self.signature.parameters.values():
            if param.kind in (_KINDS.VAR_POSITIONAL, _KINDS.VAR_KEYWORD, _KINDS.POSITIONAL_ONLY):
                raise InvalidInput(
                    f"pipeline {options.name!r}: parameter {param.name!r} must be a named "
                    "keyword parameter (no *args, **kwargs or positional-only)"
                )
        functools.update_wrapper(self, fn)
        if all(p.default is not _KINDS.empty for p in self.signature.parameters.values()):
            # Validate now: a missing input or a bad parameter fails at definition. A NameError
            # means the body calls a step defined further down the module: trace it later.
            with contextlib.suppress(NameError):
                self.graph()

    @property
    def name(self) -> str:
        """The pipeline's name (also the name of the experiment holding its runs)."""
        return self.options.name

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}>"

    def with_options(self, **changes: Any) -> Pipeline:
        """Return a copy of this pipeline with some options changed."""
        try:
            return Pipeline(self.fn, dataclasses.replace(self.options, **changes))
        except TypeError as exc:
            raise InvalidInput(f"pipeline {self.name!r}: {exc}") from None

    def bind(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return the run's parameters: ``params`` checked, completed with defaults."""
        given = dict(params or {})
        owner = f"pipeline {self.name!r}"
        unknown = sorted(set(given) - set(self.signature.parameters))
        if unknown:
            known = ", ".join(self.signature.parameters) or "none"
            raise InvalidInput(f"{owner} has no parameter {unknown[0]!r} (parameters: {known})")
        values = bind_defaults(self.signature, given)
        missing = [n for n in self.signature.parameters if n not in values]
        if missing:
            raise InvalidInput(f"{owner} needs parameter {', '.join(map(repr, missing))}")
        hint = self.hints.get
        return {k: check_param(owner, k, v, hint(k, _KINDS.empty)) for k, v in values.items()}

    def parse_params(self, pairs: Mapping[str, str]) -> dict[str, Any]:
        """Return CLI ``--param k=v`` text converted to the parameters' annotated types."""
        owner = f"pipeline {self.name!r}"
        out = {}
        for key, text in pairs.items():
            if key not in self.signature.parameters:
                known = ", ".join(self.signature.parameters) or "none"
                raise InvalidInput(f"{owner} has no parameter {key!r} (parameters: {known})")
            out[key] = coerce_text(owner, key, text, self.hints.get(key, _KINDS.empty))
        return self.bind(out)

    def graph(self, params: Mapping[str, Any] | None = None) -> Dag:
        """Return the DAG the body builds for these parameters, validated."""
        values = self.bind(params)
        with tracing(self.name) as tracer:
            self.fn(**values)
        if not tracer.dag.nodes:
            raise InvalidInput(f"pipeline {self.name!r} calls no step; call steps in its body")
        tracer.dag.validate()
        return tracer.dag

    def run(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        no_cache: bool | None = None,
        executor: str = "local",
        max_workers: int | None = None,
        raise_on_failure: bool = True,
        address: str | None = None,
    ) -> PipelineRunInfo:
        """Run the pipeline and return its recorded run (``PipelineFailed`` if a step failed).

        ``executor`` is ``local`` (worker processes, the default), ``ray`` (a local Ray
        instance, or the cluster at ``address``) or ``inline`` (this process, for debugging).
        """
        from keel.pipelines.api import run_pipeline

        return run_pipeline(
            self,
            params,
            no_cache=self.options.no_cache if no_cache is None else no_cache,
            executor=executor,
            max_workers=self.options.max_workers if max_workers is None else max_workers,
            raise_on_failure=raise_on_failure,
            address=address,
        )

    def __call__(self, **params: Any) -> PipelineRunInfo:
        if current_tracer() is not None:
            raise InvalidInput(f"pipeline {self.name!r} is called inside another pipeline")
        return self.run(params)

    @property
    def ref(self) -> str | None:
        """Return ``module:name`` if a fresh process can import this pipeline, else None."""
        module, qualname = self.fn.__module__, self.fn.__qualname__
        if module != "__main__" and resolves_to(module, qualname, self):
            return f"{module}:{qualname}"
        return None

    def __reduce__(self) -> Any:
        if self.ref is not None:
            return (import_object, (self.fn.__module__, self.fn.__qualname__))
        return (Pipeline, (self.fn, self.options))


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(
    *, name: str | None = None, no_cache: bool = False, max_workers: int | None = None
) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    no_cache: bool = False,
    max_workers: int | None = None,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Return the function made a :class:`Pipeline` (bare ``@pipeline`` or with options)."""
    if max_workers is not None and (type(max_workers) is not int or not 1 <= max_workers <= 256):
        raise InvalidInput("max_workers must be an integer from 1 to 256")

    def decorate(f: Callable[..., Any]) -> Pipeline:
        check_function(f, "pipeline", name)
        label = f.__name__ if name is None else name
        return Pipeline(f, PipelineOptions(label, no_cache, max_workers))

    return decorate if fn is None else decorate(fn)
