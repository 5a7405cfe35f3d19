"""The run search language: parsing, errors, and SQL results on SQLite and PostgreSQL
(metrics, params, tags, run attributes and the runs' dataset inputs)."""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.errors import InvalidInput
from keel.store import schema
from keel.tracking.filter import (
    MAX_FILTER_LENGTH,
    MAX_NESTING,
    And,
    Comparison,
    FilterExpr,
    Key,
    Or,
    OrderKey,
    compile_filter,
    compile_order_by,
    parse_filter,
    parse_order_by,
)
from keel.tracking.filter_sql import MAX_NUMBER_CHARS, NUMBER_PATTERN, numeric_guard

PG_URL = os.environ.get("KEEL_TEST_POSTGRES_URL")
NAN, INF = math.nan, math.inf


def rid(i: int) -> str:
    return f"{i:032x}"


# index, name, status, start_time, end_time, user, git_commit, git_dirty, parent index
RUNS = [
    (0, "lr-1", "finished", 1000, 2000, "alice", "abc123", False, None),
    (1, "lr-2", "finished", 1100, 2100, "bob", "abc123", True, None),
    (2, "rf-1", "failed", 1200, None, "alice", None, None, None),
    (3, "rf-2", "running", 1300, None, "carol", "def456", False, 0),
    (4, "LR-3", "killed", 1400, 1500, "bob", None, True, 0),
    (5, "x_y%z", "finished", 1500, 1600, "alice", None, None, None),
    (6, "it's", "finished", 1600, 1700, "dave", None, None, None),
    (7, "a*b?[c]", "finished", 1700, 1800, "alice", None, None, None),
    (8, "Ünïcode", "failed", 1800, None, "erin", None, None, None),
    (9, "plain", "finished", 1000, 1900, "bob", None, None, 1),
]
PARAMS = {
    "lr": {0: "0.1", 1: "0.01", 2: "1e-3", 3: "abc", 4: "", 5: "10", 6: "3", 7: "3.0", 8: " 3"},
    "model": {0: "lr", 1: "lr", 2: "rf", 3: "rf", 4: "LR", 5: "svm", 6: "a' OR 1=1 --", 7: "rf"},
    "depth": {2: "3", 3: "10", 7: "5", 8: "-2.5e1", 9: "1.e1"},
}
TAGS = {
    "team": {0: "a", 1: "b", 2: "a", 3: "c", 4: "A", 5: "b"},
    "odd key`s": {1: "yes"},
    "note": {6: "100%", 7: "50_50", 8: "a\\b"},
}
METRICS = {
    "accuracy": {0: 0.95, 1: 0.9, 2: NAN, 3: 0.5, 4: -1.0, 5: INF, 6: -INF, 7: 0.9, 9: 1e-3},
    "loss": {0: 0.1, 1: 0.2, 2: 0.3, 3: NAN, 4: 2.5e3, 5: 0.0},
    "f1 score": {0: 0.8, 1: 0.7},
}
# index -> (name, digest); then each run's dataset inputs as (dataset index, context)
DATASETS = [
    ("train", "aa" * 32), ("train", "bb" * 32), ("Eval_set", "cc" * 32), ("it's", "dd" * 32),
    ("100%", "ee" * 32), ("unused", "ff" * 32),
]  # fmt: skip
INPUTS = {
    0: [(0, "training"), (2, "eval")],
    1: [(0, "training")],
    2: [(1, "training"), (2, "Eval")],
    3: [(3, "training")],
    4: [(4, "eval")],
    5: [(0, "training"), (0, "eval")],
}
AA, BB, CC, DD = (DATASETS[i][1] for i in range(4))
ALL = set(range(len(RUNS)))
ATTR_COLUMNS = ("run_id", "name", "status", "start_time", "end_time", "user", "git_commit")


def run_row(i: int) -> dict[str, Any]:
    _, name, status, start, end, user, commit, dirty, parent = RUNS[i]
    return {
        "run_id": rid(i), "experiment_id": rid(100), "name": name, "status": status,
        "start_time": start, "end_time": end, "user": user, "source": "train.py",
        "git_commit": commit, "git_dirty": dirty,
        "parent_run_id": None if parent is None else rid(parent),
    }  # fmt: skip


def populate(engine: sa.Engine) -> None:
    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.experiments),
            [{"experiment_id": rid(100), "name": "exp", "created_at": 0, "updated_at": 0}],
        )
        conn.execute(sa.insert(schema.runs), [run_row(i) for i in range(len(RUNS))])
        for table, data in ((schema.params, PARAMS), (schema.tags, TAGS)):
            rows = [
                {"run_id": rid(i), "key": k, "value": v}
                for k, d in data.items()
                for i, v in d.items()
            ]
            conn.execute(sa.insert(table), rows)
        conn.execute(
            sa.insert(schema.datasets),
            [
                {"dataset_id": rid(200 + j), "name": name, "digest": digest, "created_at": 0}
                for j, (name, digest) in enumerate(DATASETS)
            ],
        )
        conn.execute(
            sa.insert(schema.run_inputs),
            [
                {"run_id": rid(i), "dataset_id": rid(200 + j), "context": context}
                for i, inputs in INPUTS.items()
                for j, context in inputs
            ],
        )
        conn.execute(
            sa.insert(schema.latest_metrics),
            [
                {"run_id": rid(i), "key": k, "value": 0.0 if math.isnan(v) else v,
                 "value_text": repr(v), "timestamp": 0, "step": 0, "is_nan": math.isnan(v)}
                for k, d in METRICS.items() for i, v in d.items()
            ],
        )  # fmt: skip


@dataclass
class Backend:
    engine: sa.Engine
    dialect: str

    def ids(self, text: str | None) -> set[int]:
        clause = compile_filter(parse_filter(text), self.dialect)
        query = sa.select(schema.runs.c.run_id)
        if clause is not None:
            query = query.where(clause)
        with self.engine.connect() as conn:
            return {int(r, 16) for r in conn.execute(query).scalars()}

    def ordered(self, order_by: Any) -> list[int]:
        query = sa.select(schema.runs.c.run_id).order_by(
            *compile_order_by(parse_order_by(order_by), self.dialect)
        )
        with self.engine.connect() as conn:
            return [int(r, 16) for r in conn.execute(query).scalars()]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('filter') / 'keel.db'}")
        populate(engine)
        yield Backend(engine, "sqlite")
        engine.dispose()
        return
    if not PG_URL:
        pytest.skip("KEEL_TEST_POSTGRES_URL is not set")
    name = f"keel_filter_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine = sa.create_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
    try:
        populate(engine)
        yield Backend(engine, "postgresql")
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


# -- a brute-force reference: the filter's meaning, evaluated in Python --------------------


def _like(value: str, pattern: str, ignore_case: bool) -> bool:
    out, chars = [], iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        else:
            out.append({"%": ".*", "_": "."}.get(c) or re.escape(c))
    flags = re.DOTALL | (re.IGNORECASE | re.ASCII if ignore_case else 0)
    return re.fullmatch("".join(out), value, flags) is not None


def _as_number(text: str) -> float | None:
    ok = len(text) <= MAX_NUMBER_CHARS and re.fullmatch(NUMBER_PATTERN, text)
    return float(text) if ok else None


_OPS = {
    "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}  # fmt: skip


def _positive(op: str, value: Any, lit: Any, kind: str) -> bool:
    """Evaluate a non-negated operator on a present, non-null value."""
    if op in ("like", "ilike"):
        return _like(value, lit, op == "ilike")
    if op == "in":
        return any(_positive("=", value, item, kind) for item in lit)
    if kind in ("param", "tag") and isinstance(lit, Decimal):
        number = _as_number(value)
        return number is not None and _OPS[op](number, float(lit))
    if isinstance(lit, Decimal):
        return _OPS[op](float(value), float(lit))
    return _OPS[op](value, lit)


def reference(expr: FilterExpr | None, i: int) -> bool:
    if expr is None:
        return True
    if isinstance(expr, And):
        return all(reference(item, i) for item in expr.items)
    if isinstance(expr, Or):
        return any(reference(item, i) for item in expr.items)
    assert isinstance(expr, Comparison)
    kind, name, op, lit = expr.key.kind, expr.key.name, expr.op, expr.value
    if kind == "dataset":
        return _reference_dataset(expr, i)
    if kind == "attribute":
        value = run_row(i)[name]
    else:
        value = {"param": PARAMS, "tag": TAGS, "metric": METRICS}[kind].get(name, {}).get(i)
    if op in ("is null", "is not null"):
        return (value is None) == (op == "is null")
    if value is None or (kind == "metric" and math.isnan(value)):
        return False
    negated = op.startswith("not ") or op == "!="
    positive = {"!=": "="}.get(op, op.removeprefix("not "))
    return _positive(positive, value, lit, kind) != negated


def _reference_dataset(expr: Comparison, i: int) -> bool:
    """Some input of run ``i`` satisfies the condition (MLflow's meaning); is null: none."""
    fields = [
        {"name": DATASETS[j][0], "digest": DATASETS[j][1], "context": context}
        for j, context in INPUTS.get(i, [])
    ]
    if expr.op in ("is null", "is not null"):
        return (not fields) == (expr.op == "is null")
    negated = expr.op.startswith("not ") or expr.op == "!="
    positive = {"!=": "="}.get(expr.op, expr.op.removeprefix("not "))
    return any(
        _positive(positive, f[expr.key.name], expr.value, "dataset") != negated for f in fields
    )


def expected(text: str | None) -> set[int]:
    expr = parse_filter(text)
    return {i for i in ALL if reference(expr, i)}


# -- results of each operator -------------------------------------------------------------

CASES = [
    ("metrics.accuracy > 0.9", {0, 5}),
    ("metrics.accuracy >= 0.9", {0, 1, 5, 7}),
    ("metrics.accuracy = 0.9", {1, 7}),
    ("metrics.accuracy != 0.9", {0, 3, 4, 5, 6, 9}),
    ("metrics.accuracy < 0", {4, 6}),
    ("metrics.accuracy <= -1", {4, 6}),
    ("metrics.accuracy in (0.5, 1e-3, -1)", {3, 4, 9}),
    ("metrics.accuracy not in (0.9, 0.95)", {3, 4, 5, 6, 9}),
    ("metrics.accuracy is null", {8}),
    ("metrics.accuracy IS NOT NULL", ALL - {8}),
    ("metrics.`f1 score` > 0.75", {0}),
    ('metrics."f1 score" < 0.75', {1}),
    ("metric.loss > 1E3", {4}),
    ("metrics.loss >= 0", {0, 1, 2, 4, 5}),
    ("params.model = 'rf'", {2, 3, 7}),
    ("params.model != 'rf'", {0, 1, 4, 5, 6}),
    ("params.model like 'r%'", {2, 3, 7}),
    ("params.model like 'L%'", {4}),
    ("params.model ilike 'l%'", {0, 1, 4}),
    ("params.model not like 'r%'", {0, 1, 4, 5, 6}),
    ("params.model not ilike 'L_'", {2, 3, 5, 6, 7}),
    ("params.model in ('lr', 'svm')", {0, 1, 5}),
    ("params.model not in ('lr', 'svm')", {2, 3, 4, 6, 7}),
    ("params.lr > 0.05", {0, 5, 6, 7}),
    ("params.lr < 0.05", {1, 2}),
    ("params.lr = 3", {6, 7}),
    ("params.lr != 3", {0, 1, 2, 3, 4, 5, 8}),
    ("params.lr = '3'", {6}),
    ("params.lr in (3, '0.1')", {0, 6, 7}),
    ("params.lr >= -1e9", {0, 1, 2, 5, 6, 7}),
    ("param.depth > 4", {3, 7, 9}),
    ("params.depth < 0", {8}),
    ("params.missing = 'x'", set()),
    ("params.missing is null", ALL),
    ("params.depth is not null", {2, 3, 7, 8, 9}),
    ("tags.team = 'a'", {0, 2}),
    ("tags.team in ('a', 'b')", {0, 1, 2, 5}),
    ("tags.team ilike 'a'", {0, 2, 4}),
    ("tags.team != 'a'", {1, 3, 4, 5}),
    ("tag.`odd key``s` = 'yes'", {1}),
    ("tags.note like '100\\%'", {6}),
    ("tags.note like '%\\_%'", {7}),
    ("tags.note like '%\\\\%'", {8}),
    ("tags.note like '50_50'", {7}),
    ("tags.note ilike '100\\%'", {6}),
    ("name ilike 'X\\_Y%'", {5}),
    ("tags.note like '%0%'", {6, 7}),
    ("status = 'FINISHED'", {0, 1, 5, 6, 7, 9}),
    ("attributes.status != 'finished'", {2, 3, 4, 8}),
    ("run.status in ('failed', 'Killed')", {2, 4, 8}),
    ("run_name like 'lr-%'", {0, 1}),
    ("attribute.name ilike 'LR-%'", {0, 1, 4}),
    ("name not like 'lr%'", ALL - {0, 1}),
    ("name like 'x\\_y\\%z'", {5}),
    ("name like 'x_y%'", {5}),
    ("name like 'a*b?[c]'", {7}),
    ("name like '_n%'", {8}),
    ("name = 'it''s'", {6}),
    ('name = "it\'s"', {6}),
    ("start_time >= 1500", {5, 6, 7, 8}),
    ("start_time = 1000", {0, 9}),
    ("start_time < 1.2e3", {0, 1, 9}),
    ("end_time is null", {2, 3, 8}),
    ("end_time > 1600", {0, 1, 6, 7, 9}),
    ("end_time != 1500", {0, 1, 5, 6, 7, 9}),
    ("git_dirty = true", {1, 4}),
    ("git_dirty = FALSE", {0, 3}),
    ("git_dirty != 'true'", {0, 3}),
    ("git_dirty is null", {2, 5, 6, 7, 8, 9}),
    (f"parent_run_id = '{rid(0)}'", {3, 4}),
    (f"run_id in ('{rid(1)}', '{rid(2)}')", {1, 2}),
    ("git_commit = 'abc123'", {0, 1}),
    ("user = 'alice' and metrics.accuracy > 0.9", {0, 5}),
    ("user = 'alice' or user = 'bob' and metrics.accuracy > 0.9", {0, 2, 5, 7}),
    ("(user = 'alice' or user = 'bob') and metrics.accuracy >= 0.9", {0, 1, 5, 7}),
    ("STATUS = 'failed' AND Params.depth IS NOT NULL", {2, 8}),
    ("((status = 'failed')) or (((tags.team = 'c')))", {2, 3, 8}),
    ("params.model = 'a'' OR 1=1 --'", {6}),
    ("params.model = 'x'' OR ''1''=''1'", set()),
    ("name = 'x''; DROP TABLE runs; --'", set()),
    ("datasets.name = 'train'", {0, 1, 2, 5}),
    (f"datasets.digest = '{AA}'", {0, 1, 5}),
    (f"datasets.digest in ('{BB}', '{DD}')", {2, 3}),
    (f"datasets.digest not in ('{AA}')", {0, 2, 3, 4}),
    ("datasets.name != 'train'", {0, 2, 3, 4}),
    ("datasets.context = 'eval'", {0, 4, 5}),
    ("datasets.context ilike 'EVAL'", {0, 2, 4, 5}),
    ("datasets.context like 'E%'", {2}),
    ("datasets.context not like '%a%'", set()),
    ("datasets.name like '100\\%'", {4}),
    ("datasets.name like 'eval%'", set()),
    ("datasets.name ilike 'eval\\_%'", {0, 2}),
    ("datasets.name not ilike 'T%'", {0, 2, 3, 4}),
    ("datasets.name = 'it''s'", {3}),
    ("datasets.name = 'unused'", set()),
    ("datasets.name is null", {6, 7, 8, 9}),
    ("datasets.digest is not null", {0, 1, 2, 3, 4, 5}),
    ("datasets.name = 'train' and datasets.context = 'eval'", {0, 5}),
    ("DATASETS.Name = 'train' and status = 'finished'", {0, 1, 5}),
    (f"dataset.`digest` = '{CC}'", {0, 2}),
    ("datasets.\"context\" in ('Eval', 'x')", {2}),
    (f"datasets.digest = '{DD}' or params.model = 'svm'", {3, 5}),
    ("datasets.name = 'x'' OR 1=1 --'", set()),
    ("datasets.name = 'x''); DROP TABLE run_inputs; --'", set()),
    ("", ALL),
    ("   ", ALL),
    (None, ALL),
]


@pytest.mark.parametrize(("text", "ids"), CASES, ids=[str(c[0]) for c in CASES])
def test_operator_results(db: Backend, text: str | None, ids: set[int]) -> None:
    assert db.ids(text) == ids
    assert expected(text) == ids  # the reference agrees, so the fuzz test below can trust it


def test_runs_table_survives_injection(db: Backend) -> None:
    db.ids("name = 'x''; DROP TABLE runs; --'")
    db.ids("datasets.name = 'x''); DROP TABLE run_inputs; --'")
    assert db.ids(None) == ALL
    assert db.ids("datasets.name is not null") == set(INPUTS)


def test_literals_are_bound_parameters() -> None:
    clause = compile_filter(parse_filter("params.model = 'a'' OR 1=1 --'"), "sqlite")
    sql = str(clause)
    assert "OR 1=1" not in sql
    assert "a' OR 1=1 --" in clause.compile().params.values()


# Filters built from pieces that fit the fixture, to compare SQL with the reference.
_CONDITIONS = [
    *(f"metrics.{k} {op} {v}" for k in ("accuracy", "loss", "`f1 score`", "nope")
      for op in ("=", "!=", "<", "<=", ">", ">=") for v in ("0.9", "-1", "0", "1e3")),
    *(f"params.{k} {op} {v}" for k in ("lr", "depth", "model")
      for op in ("=", "!=", "<", ">=") for v in ("3", "0.05", "-25", "10")),
    *(f"params.model {op} {v}" for op in ("=", "!=", "like", "ilike", "not like")
      for v in ("'rf'", "'L%'", "'%r%'", "''")),
    *(f"tags.{k} {op} ('a', 'b', '50_50')" for k in ("team", "note") for op in ("in", "not in")),
    *(f"{k} is {n}null" for k in ("metrics.loss", "tags.team", "end_time", "git_dirty")
      for n in ("", "not ")),
    "status = 'finished'", "status != 'Failed'", "name ilike '%R%'", "name like '%-_'",
    "start_time > 1300", "end_time <= 1700", "git_dirty = true", "user in ('bob', 'erin')",
    *(f"datasets.{k} {op} {v}" for k in ("name", "context")
      for op in ("=", "!=", "like", "not ilike") for v in ("'train'", "'eval'", "'E%'", "'%'")),
    *(f"datasets.digest {op} ('{AA}', '{CC}')" for op in ("in", "not in")),
    "datasets.name is null", "datasets.context is not null",
]  # fmt: skip


@st.composite
def filters(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        if depth < 2 and draw(st.booleans()):
            parts.append(f"({draw(filters(depth + 1))})")
        else:
            parts.append(draw(st.sampled_from(_CONDITIONS)))
    joins = [draw(st.sampled_from([" and ", " or ", " AND ", " Or "])) for _ in parts[1:]]
    return parts[0] + "".join(j + p for j, p in zip(joins, parts[1:], strict=True))


@settings(max_examples=150, deadline=None)
@given(text=filters())
def test_sql_matches_reference(db: Backend, text: str) -> None:
    assert db.ids(text) == expected(text)


@settings(max_examples=300, deadline=None)
@given(value=st.text(alphabet="0123456789.eE+- x", max_size=12))
def test_numeric_guard_matches_pattern(db: Backend, value: str) -> None:
    query = sa.select(numeric_guard(sa.literal(value, sa.Text), db.dialect))
    with db.engine.connect() as conn:
        assert bool(conn.execute(query).scalar()) == (_as_number(value) is not None)


def test_numeric_guard_edge_values(db: Backend) -> None:
    for value, ok in [("1e-3", True), ("10", True), ("abc", False), ("", False), (".5", True),
                      ("5.", True), ("1.e1", True), ("+-1", False), ("1e1000", False),
                      (" 3", False), ("nan", False), ("1" * 101, False), ("-0", True)]:  # fmt: skip
        query = sa.select(numeric_guard(sa.literal(value, sa.Text), db.dialect))
        with db.engine.connect() as conn:
            assert bool(conn.execute(query).scalar()) is ok, value


def test_longest_filter_runs(db: Backend) -> None:
    piece = "params.lr > 1 or "
    text = piece * ((MAX_FILTER_LENGTH - 20) // len(piece)) + "status = 'killed'"
    assert len(text) <= MAX_FILTER_LENGTH
    assert db.ids(text) == {4, 5, 6, 7}


def test_the_longest_dataset_list_runs_and_a_longer_one_is_refused(db: Backend) -> None:
    names = []
    while len(", ".join(names)) < MAX_FILTER_LENGTH - 40:
        names.append(f"'n{len(names)}'")
    listed = ", ".join([*names, "'train'"])
    text = f"datasets.name in ({listed})"
    assert len(names) > 1000
    assert len(text) <= MAX_FILTER_LENGTH
    assert db.ids(text) == {0, 1, 2, 5}
    longer = text[:-1] + ", 'x'" * ((MAX_FILTER_LENGTH - len(text)) // 5 + 1) + ")"
    with pytest.raises(InvalidInput, match=f"at most {MAX_FILTER_LENGTH}"):
        parse_filter(longer)


def test_deepest_nesting_runs(db: Backend) -> None:
    text = "(" * MAX_NESTING + "status = 'killed'" + ")" * MAX_NESTING
    assert db.ids(text) == {4}


# -- order by -----------------------------------------------------------------------------


def _sort_value(key: OrderKey, i: int) -> Any:
    if key.key.kind == "attribute":
        return run_row(i)[key.key.name]
    data = {"param": PARAMS, "tag": TAGS, "metric": METRICS}[key.key.kind]
    value = data.get(key.key.name, {}).get(i)
    return None if isinstance(value, float) and math.isnan(value) else value


def reference_order(keys: list[OrderKey]) -> list[int]:
    def cmp(a: int, b: int) -> int:
        for key in keys:
            va, vb = _sort_value(key, a), _sort_value(key, b)
            if va == vb:
                continue
            if va is None or vb is None:
                return 1 if va is None else -1  # missing last in both directions
            return (-1 if va < vb else 1) * (1 if key.ascending else -1)
        start_a, start_b = RUNS[a][3], RUNS[b][3]
        if start_a != start_b:
            return -1 if start_a > start_b else 1
        return -1 if rid(a) < rid(b) else 1

    return sorted(ALL, key=functools.cmp_to_key(cmp))


ORDERS = [
    (None, [8, 7, 6, 5, 4, 3, 2, 1, 0, 9]),
    (["metrics.accuracy DESC"], [5, 0, 7, 1, 3, 9, 4, 6, 8, 2]),
    ("metrics.accuracy", [6, 4, 9, 3, 7, 1, 0, 5, 8, 2]),
    (["params.lr"], [4, 8, 1, 0, 5, 2, 6, 7, 3, 9]),
    ("end_time desc", [1, 0, 9, 7, 6, 5, 4, 8, 3, 2]),
    ("run_name", [4, 7, 6, 0, 1, 9, 2, 3, 5, 8]),
    ("tags.team asc, metrics.`f1 score` desc", [4, 0, 2, 1, 5, 3, 8, 7, 6, 9]),
    (["params.model", "start_time ASC"], [4, 6, 0, 1, 2, 3, 7, 5, 9, 8]),
]


@pytest.mark.parametrize(("order_by", "ids"), ORDERS, ids=[str(o[0]) for o in ORDERS])
def test_order_by(db: Backend, order_by: Any, ids: list[int]) -> None:
    assert db.ordered(order_by) == ids
    assert reference_order(parse_order_by(order_by)) == ids


_ORDER_KEYS = ["metrics.accuracy", "metrics.loss", "params.lr", "params.depth", "tags.team",
               "status", "end_time", "git_dirty", "user", "tags.note"]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    keys=st.lists(
        st.tuples(st.sampled_from(_ORDER_KEYS), st.sampled_from(["", " asc", " DESC"])),
        max_size=3,
    )
)
def test_order_by_matches_reference(db: Backend, keys: list[tuple[str, str]]) -> None:
    items = [k + d for k, d in keys]
    assert db.ordered(items) == reference_order(parse_order_by(items))


def test_parse_order_by_forms() -> None:
    metric = OrderKey(Key("metric", "a,b"), ascending=False)
    name = OrderKey(Key("attribute", "name"))
    assert parse_order_by("metrics.`a,b` DESC, run_name") == [metric, name]
    assert parse_order_by(["metrics.`a,b` desc", "name asc"]) == [metric, name]
    assert parse_order_by("") == parse_order_by([]) == parse_order_by(None) == []


@pytest.mark.parametrize(
    ("order_by", "fragment"),
    [
        ("metrics.a desc,", "position 16: expected a key after ','"),
        ("metrics.a upward", "position 11: expected 'asc', 'desc', ',' or end of input"),
        ("colour", "unknown attribute 'colour'"),
        ("metrics.", "empty key"),
        ([3], "order_by entries must be strings"),
        ("name, datasets.name desc", "position 7: datasets.name cannot order runs"),
        ("datasets.colour", "unknown dataset key 'colour'"),
    ],
)
def test_order_by_errors(order_by: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        parse_order_by(order_by)


# -- parsing and errors ---------------------------------------------------------------------


def test_parse_tree_and_precedence() -> None:
    expr = parse_filter("status = 'a' or metrics.x > -1.5e2 and tags.t in ('p', \"q\")")
    assert expr == Or((
        Comparison(Key("attribute", "status"), "=", "a"),
        And((
            Comparison(Key("metric", "x"), ">", Decimal("-150")),
            Comparison(Key("tag", "t"), "in", ("p", "q")),
        )),
    ))  # fmt: skip
    assert str(Key("metric", "f1 score")) == "metrics.`f1 score`"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metrics.accuracy >", "position 19: expected a value after '>', found end of input"),
        ("metrics. > 1", "position 1: empty key after 'metrics.'"),
        ("metrics.`` > 1", "empty key"),
        ("metrics.acc > 'high'", "position 15: '>' on metrics.acc needs a number, found 'high'"),
        ("name = 'abc", "position 8: unterminated string starting here"),
        ("metrics.`abc > 1", "position 9: unterminated back-ticked name"),
        ("colour = 'red'", "unknown attribute 'colour'; valid attributes: end_time, experiment_id"),
        ("foo.bar = 1", "unknown key prefix 'foo'; expected one of attributes, datasets,"),
        ("datasets.size = 'x'", "position 1: unknown dataset key 'size'; use datasets.name"),
        ("datasets. = 'x'", "unknown dataset key ''"),
        ("datasets.name > 'a'", "datasets.name does not support '>'"),
        ("datasets.digest = 3", "position 19: '=' on datasets.digest needs a string, found 3"),
        ("datasets.name in ('a', 2)", "position 24: 'in' on datasets.name needs a string"),
        ("datasets.context = true", "needs a string"),
        ("datasets.name = null", "using 'is null'"),
        ("(status = 'a'", "position 14: expected ')' to close the '(' at position 1"),
        ("status = 'a' status", "position 14: expected 'and', 'or' or end of input"),
        ("status = 'a' and", "position 17: expected a key"),
        ("status 'a'", "position 8: expected an operator"),
        ("status not = 'a'", "position 12: expected 'in', 'like' or 'ilike' after 'not'"),
        ("params.a in ()", "position 14: expected a value after 'in ('"),
        ("params.a in ('x',)", "position 18: expected a value after ','"),
        ("params.a in 'x'", "expected '(' after 'in'"),
        ("params.a is 'x'", "expected 'null' after 'is'"),
        ("params.a = null", "using 'is null'"),
        ("params.a < 'x'", "'<' on params.a needs a number"),
        ("params.a = true", "needs a string or a number"),
        ("params.a like 3", "needs a string"),
        ("metrics.a like '%'", "metrics.a does not support 'like'"),
        ("start_time = 'yesterday'", "needs a number"),
        ("status < 'b'", "does not support '<'"),
        ("git_dirty = 'maybe'", "needs true or false"),
        ("metrics.a > 1abc", "position 13: expected a number, found '1abc'"),
        ("metrics.a > 1e99999", "out of range"),
        ("metrics.a # 1", "position 11: unexpected character '#'"),
        ("metrics.a > 1 ; drop", "unexpected character ';'"),
        ("name = 'a\x00b'", "position 10: unexpected NUL character"),
        ("x" * (MAX_FILTER_LENGTH + 1), f"at most {MAX_FILTER_LENGTH}"),
        ("(" * (MAX_NESTING + 1) + "status = 'a'", f"deeper than {MAX_NESTING}"),
        ("(" * 100_000, f"at most {MAX_FILTER_LENGTH}"),
        ("(" * 5000, f"deeper than {MAX_NESTING}"),
    ],
)
def test_errors_name_position(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(fragment)) as info:
        parse_filter(text)
    assert "invalid filter" in str(info.value) or "characters" in str(info.value)
    if len(text) < 100:
        assert text.replace("\x00", " ") in str(info.value)  # the message shows the filter


def test_error_on_long_text_shows_window() -> None:
    text = "status = 'a' and " * 50 + "metrics.x >"
    with pytest.raises(InvalidInput, match=f"position {len(text) + 1}:") as info:
        parse_filter(text)
    assert "metrics.x >" in str(info.value)
    assert len(str(info.value)) < 500


def test_bad_inputs_to_compile() -> None:
    with pytest.raises(InvalidInput, match="supported: postgresql, sqlite"):
        compile_filter(parse_filter("status = 'a'"), "mysql")
    with pytest.raises(InvalidInput, match="supported"):
        compile_order_by([], "oracle")
    with pytest.raises(InvalidInput, match="must be a string"):
        parse_filter(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="must be a string or a list"):
        parse_order_by(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="does not support '~'"):
        compile_filter(Comparison(Key("tag", "t"), "~", "x"), "sqlite")
    with pytest.raises(InvalidInput, match="unknown attribute"):
        compile_filter(Comparison(Key("attribute", "colour"), "=", "x"), "sqlite")
    with pytest.raises(InvalidInput, match="unknown dataset key 'size'"):
        compile_filter(Comparison(Key("dataset", "size"), "=", "x"), "sqlite")
    with pytest.raises(InvalidInput, match="needs a string"):
        compile_filter(Comparison(Key("dataset", "name"), "in", ("a", Decimal(1))), "sqlite")
    with pytest.raises(InvalidInput, match="cannot order runs"):
        compile_order_by([OrderKey(Key("dataset", "name"))], "sqlite")
    assert compile_filter(None, "sqlite") is None


_VALUES = st.none() | st.booleans() | st.text(max_size=3) | st.decimals(places=2)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["attribute", "metric", "param", "tag", "dataset", "other"]),
    name=st.sampled_from(["status", "start_time", "git_dirty", "x", "", "name", "context"]),
    op=st.sampled_from(["=", "!=", "<", "in", "not in", "like", "not ilike", "is null", "~"]),
    value=_VALUES | st.tuples(_VALUES) | st.tuples(_VALUES, _VALUES),
)
def test_hand_built_trees_compile_or_raise_invalid_input(
    kind: Any, name: str, op: str, value: Any
) -> None:
    with contextlib.suppress(InvalidInput):
        compile_filter(And((Comparison(Key(kind, name), op, value),)), "postgresql")


_TOKENS = ["metrics.a", "params.b", "tags.`c d`", "status", "name", "metrics.", "and", "or",
           "datasets.name", "datasets.digest", "datasets.context", "datasets.",
           "not", "in", "like", "ilike", "is", "null", "(", ")", ",", "=", "!=", "<", ">=",
           "'x'", '"y"', "'", "`", "1", "-2.5e3", "true", "FALSE", ".", "e", "1e",
           "--"]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(text=st.text(max_size=60) | st.lists(st.sampled_from(_TOKENS), max_size=12).map(" ".join))
def test_fuzz_parse_only_raises_invalid_input(text: str) -> None:
    try:
        expr = parse_filter(text)
    except InvalidInput:
        return
    for dialect in ("sqlite", "postgresql"):
        compile_filter(expr, dialect)


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(_TOKENS), min_size=3, max_size=12).map(" ".join))
def test_fuzz_accepted_filters_execute(db: Backend, text: str) -> None:
    try:
        parse_filter(text)
    except InvalidInput:
        return
    db.ids(text)  # no database error for anything the parser accepts


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40) | st.lists(st.sampled_from(_TOKENS), max_size=6).map(" ".join))
def test_fuzz_order_by_only_raises_invalid_input(text: str) -> None:
    with contextlib.suppress(InvalidInput):
        parse_order_by(text)
