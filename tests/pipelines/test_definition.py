"""Defining steps and pipelines: decorators, tracing into a DAG, definition-time errors."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Literal

import cloudpickle
import pytest
import sample_pipelines as sp

import keel.pipelines as kp
from keel.errors import InvalidInput
from keel.pipelines.graph import Dag, Node
from keel.pipelines.steps import StepOptions


def test_step_works_bare_and_with_options_and_keeps_the_function() -> None:
    @kp.step
    def double(x: int) -> int:
        """Twice x."""
        return 2 * x

    @kp.step(name="triple", retries=3, timeout=5, no_cache=True, inputs="data.csv")
    def three(x: int) -> int:
        return 3 * x

    assert isinstance(double, kp.Step)
    assert double.name == "double"
    assert double.__doc__ == "Twice x."
    assert double(4) == 8  # outside a pipeline a step is its function
    assert three.options == StepOptions(
        name="triple", retries=3, timeout=5, no_cache=True, inputs=("data.csv",)
    )
    changed = three.with_options(retries=0)
    assert changed.options.retries == 0
    assert three.options.retries == 3  # options are immutable: with_options copies
    with pytest.raises(InvalidInput, match="step 'triple'"):
        three.with_options(colour="red")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 10**9}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"backoff": 0.5}, "backoff"),
        ({"backoff": float("nan")}, "backoff"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"no_cache": "yes"}, "no_cache"),
        ({"name": ""}, "step name"),
        ({"name": "../etc"}, "step name"),
        ({"name": "a" * 101}, "step name"),
        ({"name": "bad\nname"}, "step name"),
        ({"inputs": [""]}, "inputs"),
    ],
)
def test_bad_step_options_are_refused_naming_the_step(options: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):

        @kp.step(**options)
        def f(x: int) -> int:
            return x


def test_what_cannot_be_a_step_is_refused_at_definition() -> None:
    with pytest.raises(InvalidInput, match="generator function"):

        @kp.step
        def gen(n: int):
            yield n

    with pytest.raises(InvalidInput, match="async"):

        @kp.step
        async def coro(n: int) -> int:
            return n

    with pytest.raises(InvalidInput, match=r"takes \*args"):

        @kp.step
        def star(*args: int) -> int:
            return 0

    with pytest.raises(InvalidInput, match="return Iterator"):

        @kp.step
        def it(n: int) -> Iterator[int]:
            return iter([n])

    with pytest.raises(InvalidInput, match="must be a plain function"):
        kp.step(print)
    with pytest.raises(InvalidInput, match="must be a plain function"):
        kp.step(42)  # type: ignore[call-overload]
    with pytest.raises(InvalidInput, match="already a step"):
        kp.step(sp.add)  # type: ignore[call-overload]


def test_a_pipeline_traces_into_a_dag_whose_edges_are_the_data() -> None:
    dag = sp.arithmetic.graph({"x": 5})
    assert list(dag.nodes) == ["number", "number-2", "add", "add-2"]
    assert dag.nodes["add"].inputs == {"a": "number", "b": "number-2"}
    assert dag.nodes["add-2"].inputs == {"a": "add", "b": "add"}
    assert dag.nodes["add-2"].upstream == ("add",)
    assert dag.nodes["number"].params == {"value": 5}
    assert dag.descendants("number") == {"add", "add-2"}
    assert dag.validate()[-1] == "add-2"


def test_missing_and_unknown_inputs_are_definition_errors_naming_the_step() -> None:
    with pytest.raises(InvalidInput, match="step 'add' is missing input 'b'"):

        @kp.pipeline
        def missing():
            sp.add(sp.number(1))

    with pytest.raises(InvalidInput, match=r"step 'add'.*unexpected keyword argument 'c'"):

        @kp.pipeline
        def unknown():
            sp.add(1, 2, c=3)

    with pytest.raises(InvalidInput, match="calls no step"):

        @kp.pipeline
        def empty():
            pass


def test_a_pipeline_may_call_steps_defined_after_it() -> None:
    @kp.pipeline
    def early():
        later(1)

    @kp.step
    def later(x: int) -> int:
        return x

    early.fn.__globals__["later"] = later  # what a module-level definition would do
    assert list(early.graph().nodes) == ["later"]


def test_parameters_are_typed_from_annotations() -> None:
    @kp.step
    def typed(n: int, rate: float, mode: Literal["a", "b"], tags: list[str]) -> int:
        return n

    @kp.pipeline
    def ok():
        typed(1, 2, "a", ["x"])  # an int is a float

    assert ok.graph().nodes["typed"].params == {"n": 1, "rate": 2, "mode": "a", "tags": ["x"]}
    for args, message in [
        (("1", 2.0, "a", []), "parameter 'n' must be int"),
        ((True, 2.0, "a", []), "parameter 'n' must be int"),
        ((1, 2.0, "c", []), "parameter 'mode'"),
        ((1, 2.0, "a", [1]), "parameter 'tags'"),
    ]:
        with pytest.raises(InvalidInput, match=f"step 'typed': {message}"):

            @kp.pipeline
            def bad():
                typed(*args)  # noqa: B023 - traced at once, while args is this case


@pytest.mark.parametrize(
    "value",
    [object(), b"bytes", {1: "int key"}, float("nan"), 2**70, {"s": {1, 2}}, "x" * 7000],
)
def test_a_parameter_must_be_a_small_json_value(value: object) -> None:
    @kp.step
    def anything(v) -> int:
        return 1

    with pytest.raises(InvalidInput, match="step 'anything': parameter 'v'"):

        @kp.pipeline
        def p():
            anything(value)


def test_handles_are_placeholders_and_misuse_names_the_step() -> None:
    for misuse, what in [
        (bool, "tested for truth"),
        (list, "iterated"),
        (lambda h: h + 1, "arithmetic"),
        (lambda h: h["k"], "indexed"),
        (len, "len"),
        (pickle.dumps, "pickled"),
    ]:
        with pytest.raises(InvalidInput, match=f"output of step 'number'.*{what}"):

            @kp.pipeline
            def p():
                misuse(sp.number(1))  # noqa: B023 - traced at once, while misuse is this case


def test_outputs_do_not_cross_pipelines_and_lists_must_be_all_outputs() -> None:
    leaked = []

    @kp.pipeline
    def first():
        leaked.append(sp.number(1))

    with pytest.raises(InvalidInput, match="from another pipeline definition"):

        @kp.pipeline
        def second():
            sp.add(leaked[0], 1)

    with pytest.raises(InvalidInput, match="mixes step outputs and constants"):

        @kp.pipeline
        def mixed():
            sp.total([sp.number(1), 2])

    with pytest.raises(InvalidInput, match="do not nest"):

        @kp.pipeline
        def nested():
            sp.arithmetic.graph()


def test_a_cycle_is_reported_with_its_steps() -> None:
    dag = Dag("loop")
    dag.nodes["a"] = Node("a", sp.add, {"a": "c", "b": "c"}, {})
    dag.nodes["b"] = Node("b", sp.add, {"a": "a", "b": "a"}, {})
    dag.nodes["c"] = Node("c", sp.add, {"a": "b", "b": "b"}, {})
    dag.nodes["d"] = Node("d", sp.number, {}, {"value": 1})
    with pytest.raises(InvalidInput, match="has a cycle: a -> b -> c -> a"):
        dag.validate()
    with pytest.raises(InvalidInput, match="not a step of this pipeline"):
        Dag("x").add(Node("a", sp.add, {"a": "ghost", "b": "ghost"}, {}))


def test_pipeline_parameters_bind_with_defaults_and_parse_cli_text() -> None:
    assert sp.arithmetic.bind({"y": 9}) == {"x": 1, "y": 9}
    assert sp.arithmetic.parse_params({"x": "3"}) == {"x": 3, "y": 2}
    assert sp.slow.parse_params({"seconds": "0.5"}) == {"seconds": 0.5}
    assert sp.retrying.parse_params({"marker": "123"}) == {"marker": "123"}  # str stays text
    with pytest.raises(InvalidInput, match="pipeline 'arithmetic' has no parameter 'z'"):
        sp.arithmetic.bind({"z": 1})
    with pytest.raises(InvalidInput, match=r"pipeline 'arithmetic': --param x=.* is not int"):
        sp.arithmetic.parse_params({"x": "three"})
    with pytest.raises(InvalidInput, match="pipeline 'arithmetic': parameter 'x' must be int"):
        sp.arithmetic.bind({"x": "3"})

    @kp.pipeline
    def needs(n: int):
        sp.number(n)

    with pytest.raises(InvalidInput, match="needs parameter 'n'"):
        needs.graph()
    with pytest.raises(InvalidInput, match="must be a named keyword parameter"):

        @kp.pipeline
        def star(**kw: int):
            sp.number(1)


def test_steps_pickle_by_name_at_module_level_and_by_value_otherwise() -> None:
    assert pickle.loads(pickle.dumps(sp.add)) is sp.add
    assert pickle.loads(pickle.dumps(sp.arithmetic)) is sp.arithmetic
    assert sp.arithmetic.ref == "sample_pipelines:arithmetic"

    @kp.step
    def local(x: int) -> int:
        return x + 1

    copy = cloudpickle.loads(cloudpickle.dumps(local))
    assert copy is not local
    assert copy.fn(1) == 2
    assert copy.options == local.options
