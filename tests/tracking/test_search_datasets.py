"""Searching runs by their dataset inputs (``datasets.name``, ``datasets.digest``,
``datasets.context``) on SQLite, PostgreSQL and through a server; bad keys are InvalidInput
there too."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import keel
from keel.errors import InvalidInput
from keel.stores import current_stores
from keel.tracking.filter import MAX_FILTER_LENGTH

pytestmark = pytest.mark.usefixtures("backend")

EXPERIMENT = "by-dataset"


@dataclass(frozen=True)
class Logged:
    both: str  # took "train" (a) for training and "holdout" (b) for evaluation
    other: str  # took "train" (c) for training
    quoted: str  # took a dataset named "it's --" for training
    bare: str  # took no dataset
    a: str
    b: str
    c: str


def _run(name: str, metric: float, *inputs: tuple[np.ndarray, str, str]) -> str:
    with keel.start_run(experiment=EXPERIMENT, run_name=name) as run:
        keel.log_metric("m", metric)
        for data, dataset, context in inputs:
            run.log_dataset(data, name=dataset, context=context)
    return run.run_id


@pytest.fixture
def logged() -> Logged:
    a, b, c = np.arange(6.0), np.arange(6.0) * 2, np.arange(7.0)
    both = _run("both", 0.9, (a, "train", "training"), (b, "holdout", "evaluation"))
    other = _run("other", 0.5, (c, "train", "training"))
    quoted = _run("quoted", 0.7, (a, "it's --", "training"))
    bare = _run("bare", 0.1)
    digests = {i.name + i.context: i.digest for i in keel.get_run_inputs(both)}
    (c_input,) = keel.get_run_inputs(other)
    return Logged(
        both, other, quoted, bare, digests["traintraining"], digests["holdoutevaluation"],
        c_input.digest,
    )  # fmt: skip


def _found(filter_text: str, order_by: str | None = None) -> list[str]:
    return [r.run_id for r in keel.search_runs(EXPERIMENT, filter=filter_text, order_by=order_by)]


def test_runs_are_found_by_digest_name_and_context(logged: Logged) -> None:
    assert logged.a != logged.c
    assert _found(f"datasets.digest = '{logged.a}'", "run_name") == [logged.both, logged.quoted]
    assert _found(f"datasets.digest IN ('{logged.b}', '{logged.c}')", "run_name") == [
        logged.both,
        logged.other,
    ]
    assert _found("datasets.name = 'train'", "run_name") == [logged.both, logged.other]
    assert _found("datasets.context = 'evaluation'") == [logged.both]
    assert _found("datasets.name = 'it''s --'") == [logged.quoted]
    assert _found("datasets.name like 'hold%' and datasets.context ilike 'EVAL%'") == [logged.both]
    assert _found("datasets.name is null") == [logged.bare]
    assert _found(f"datasets.digest not in ('{logged.a}')", "run_name") == [
        logged.both,  # its holdout input is not a
        logged.other,
    ]


def test_a_dataset_filter_works_with_a_metric_order_and_pages(logged: Logged) -> None:
    order = "metrics.m DESC"
    assert _found("datasets.context = 'training'", order) == [
        logged.both,
        logged.quoted,
        logged.other,
    ]
    assert _found(f"datasets.digest = '{logged.a}' and metrics.m < 0.8", order) == [logged.quoted]
    page = keel.search_runs(EXPERIMENT, filter="datasets.name is not null", order_by=order,
                            max_results=2)  # fmt: skip
    rest = keel.search_runs(EXPERIMENT, filter="datasets.name is not null", order_by=order,
                            page_token=page.next_page_token)  # fmt: skip
    assert [r.run_id for r in page + rest] == [logged.both, logged.quoted, logged.other]


def test_the_metric_walk_and_the_general_query_agree(logged: Logged) -> None:
    store = current_stores().tracking
    if not hasattr(store, "_page"):
        pytest.skip("the walk is the SQL store's (through a server the server's store walks)")
    ids = [keel.get_experiment(EXPERIMENT).experiment_id]
    for text in ("datasets.name = 'train'", f"datasets.digest != '{logged.a}'",
                 "datasets.context is null or metrics.m > 0.6"):  # fmt: skip
        general, _ = store._page(ids, text, ["metrics.m"], 10, None, as_json=False,
                                 plan="general")  # fmt: skip
        walked, _ = store._page(ids, text, ["metrics.m"], 10, None, as_json=False,
                                plan="metric")  # fmt: skip
        assert walked == general, text
        assert len(general) >= 2


@pytest.mark.parametrize(
    ("filter_text", "fragment"),
    [
        ("datasets.size = 'x'", "unknown dataset key 'size'"),
        ("datasets.name > 'a'", "datasets.name does not support '>'"),
        ("datasets.digest = 12", "needs a string"),
        ("datasets.name = 'x''; DROP TABLE run_inputs; --", "unterminated string"),
    ],
)
def test_bad_dataset_filters_are_invalid_input(
    logged: Logged, filter_text: str, fragment: str
) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        _found(filter_text)


def test_datasets_cannot_order_and_the_filter_size_bound_holds(logged: Logged) -> None:
    with pytest.raises(InvalidInput, match="cannot order runs"):
        _found("datasets.name = 'train'", "datasets.name")
    listed = ", ".join(f"'{i:064x}'" for i in range(MAX_FILTER_LENGTH // 68 - 2))
    text = f"datasets.digest in ({listed}, '{logged.c}')"
    assert len(text) <= MAX_FILTER_LENGTH
    assert _found(text) == [logged.other]
    with pytest.raises(InvalidInput, match=f"at most {MAX_FILTER_LENGTH}"):
        _found(f"datasets.digest in ({listed}, {listed})")
    assert len(_found("datasets.name is not null or datasets.name is null")) == 4
