"""Run search ordered by a metric first: the page read in the metric's index order.

A search like ``order_by=["metrics.m1 DESC"]`` is answered by ``build_search``'s general
query by looking up the metric of every run in its experiments, sorting them all, and
keeping one page: over 10,000 runs that lookup is most of the search. This plan instead
walks latest_metrics' ``(key, value)`` index from the page's end of the order, joins each
entry to its run (experiment, lifecycle stage, filter), and stops once the page is full.

The order is exactly the general query's (``keel.tracking.filter_sql``): the metric's
value first (NaN counts as missing), missing values last, then the other order keys,
then start_time DESC and run_id. So a page is read in up to two parts:

* the *head*: runs that have a non-NaN value of the metric, in index order;
* the *tail*: runs that do not, in the order of the remaining keys — read only when the
  head runs out before the page is full (its offset is the page's, less the head's size),
  and never when the filter needs the metric (``metrics.m1 > 0.9``: no such run matches).

The filter's comparisons of that metric with a number bound the walk (a range of the
index) instead of being looked up per entry.

Walking the index pays a random lookup per entry (the runs are not visited in the
run_id order their rows are stored in, see migration 0008), about 2.5 times what the
general query pays per run. It only wins when the page fills within the first ~40 % of
the experiment's runs, so ``MetricOrderPlan.worth_it`` first counts the experiment's
runs and how many of the first ``SAMPLE`` index entries pass the filter, and estimates
the length of the walk from that; otherwise the general query runs, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Alias,
    ColumnElement,
    Connection,
    Float,
    Integer,
    LargeBinary,
    Row,
    Select,
    bindparam,
    cast,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import replacement_traverse

from keel.store import schema as t
from keel.tracking.filter import And, Comparison, FilterExpr

__all__ = ["BREAK_EVEN", "SAMPLE", "MetricOrderPlan", "metric_order_plan"]

# Entries read from the top of the index to estimate how long the walk for a page is
# (64 cost ~0.1 ms over 10,000 runs on SQLite, 256 ~0.5 ms).
SAMPLE = 64
# The walk is taken when it is expected to read at most this share of the runs: one
# index entry walked costs what ~2.5 runs cost the general query on SQLite, ~1.7 on
# PostgreSQL (measured over 10,000 runs), so this leaves the walk a margin on both.
BREAK_EVEN = 0.4
KEY_VALUE_INDEX = "ix_latest_metrics_key_value"


@compiles(Alias, "sqlite")
def _sqlite_alias(element: Alias, compiler: Any, fromhints: Any = None, **kw: Any) -> str:
    # As keel.tracking.search does for tables: SQLAlchemy drops FROM hints on SQLite;
    # this renders "latest_metrics AS order_metric INDEXED BY <index>" for such a hint.
    text: str = compiler.visit_alias(element, fromhints=fromhints, **kw)
    hint = fromhints.get(element) if fromhints and kw.get("asfrom") else None
    return f"{text} {hint}" if hint else text


_CMP: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_LIMIT = bindparam("page_limit", type_=Integer)
_OFFSET = bindparam("page_offset", type_=Integer)


@dataclass(frozen=True)
class MetricOrderPlan:
    """The statements of a search ordered by a metric first (see the module docstring).

    Every statement takes its page size and offset as the bound parameters
    ``page_limit`` and ``page_offset``; ``probe`` takes neither.
    """

    probe: Select[Any]  # (active runs in the experiments, entries sampled, passing)
    head: Select[Any]
    first_head: Select[Any]  # the head of a page at offset 0, in one SELECT
    # The same in the index's order alone, with (value, start_time, run_id) after the
    # columns, for ``_ties_broken``; None when other order keys follow the metric.
    first_by_value: Select[Any] | None
    head_count: Select[Any]
    tail: Select[Any] | None  # None when the filter needs the metric: no run lacks it

    def worth_it(self, conn: Connection, offset: int, limit: int) -> bool:
        """Return whether walking the index is expected to beat the general query."""
        runs, sampled, passing = conn.execute(self.probe).one()
        if sampled < SAMPLE and self.tail is None:  # the whole walk is those few entries
            return True
        wanted = offset + limit
        if not passing or wanted >= runs:  # nothing to stop early for
            return False
        expected = wanted * SAMPLE / passing
        return expected <= BREAK_EVEN * runs

    def page(self, conn: Connection, offset: int, limit: int) -> list[Row[Any]]:
        """Return up to ``limit`` rows from ``offset`` on, in the search's order."""
        rows: list[Any] | None = None
        if not offset and self.first_by_value is not None:
            # One entry more than the page: it tells whether a tie crosses the page's end.
            walked = list(conn.execute(self.first_by_value, {"page_limit": limit + 1}))
            rows = _ties_broken(walked, limit)
        if rows is None:
            head = self.head if offset else self.first_head
            rows = list(conn.execute(head, {"page_limit": limit, "page_offset": offset}))
        if len(rows) == limit or self.tail is None:
            return rows
        # A page that starts past the head starts in the tail at its offset less the head.
        skip = 0 if rows or not offset else offset - conn.execute(self.head_count).scalar_one()
        params = {"page_limit": limit - len(rows), "page_offset": skip}
        rows.extend(conn.execute(self.tail, params))
        return rows


def metric_order_plan(
    dialect: str,
    experiment_ids: tuple[str, ...],
    filter_text: str | None,
    order_by: tuple[str, ...] | str | None,
    as_json: bool,
) -> MetricOrderPlan | None:
    """Return the plan for a search whose first order key is a metric, else None.

    Takes arguments ``build_search`` has already checked (it raises on bad ones), and
    reuses plans already built, as it does.
    """
    return _cached_plan(dialect, experiment_ids, filter_text, order_by, as_json)


@lru_cache(maxsize=256)
def _cached_plan(
    dialect: str,
    experiment_ids: tuple[str, ...],
    filter_text: str | None,
    order_by: tuple[str, ...] | str | None,
    as_json: bool,
) -> MetricOrderPlan | None:
    # Imported here, as build_search does: parsing needs none of it until a search runs.
    from keel.tracking.filter import parse_filter, parse_order_by
    from keel.tracking.filter_sql import compile_filter, order_clause, order_terms
    from keel.tracking.sql_rows import run_columns, run_json_column

    order_keys = parse_order_by(order_by)
    if not order_keys or order_keys[0].key.kind != "metric":
        return None
    first, rest = order_keys[0], order_terms(order_keys[1:], dialect)
    parsed = parse_filter(filter_text)
    bounds, others, needs_value = _split_filter(parsed, first.key.name)

    r = t.runs
    scope: list[ColumnElement[bool]] = [
        r.c.experiment_id.in_(list(experiment_ids)),
        r.c.lifecycle_stage == "active",
    ]
    clause = compile_filter(parsed, dialect)
    where = scope if clause is None else [*scope, clause]
    # An alias: the filter's and the other keys' subqueries read latest_metrics too, and
    # would otherwise be correlated to this row instead of to their own.
    lm = t.latest_metrics.alias("order_metric")
    has_value = [lm.c.key == first.key.name, _not_nan(lm, dialect)]
    # The filter's conditions on the order's metric bound the walk instead: a range of
    # the index (the walk's row is the run's value of it), not a lookup per entry.
    has_value += [_CMP[c.op](lm.c.value, literal(float(c.value), Float(53))) for c in bounds]
    walked = compile_filter(others, dialect) if bounds else clause
    # The rest of the filter reads the run id from the walked entry, not from the run it
    # joins (they are equal): SQLite then checks it before looking the run up, and the
    # ~half of the entries it rejects cost no lookup in runs (~10 % of the walk).
    where_walked = scope if walked is None else [*scope, _reading_run_id(walked, lm.c.run_id)]
    # Plain ASC/DESC, no NULLS LAST (values are never NULL): PostgreSQL reads its index
    # backwards only for DESC NULLS FIRST, the default.
    value_order = lm.c.value.asc() if first.ascending else lm.c.value.desc()
    rest_labels = [expr.label(f"order_{i + 1}") for i, (expr, _) in enumerate(rest)]
    tiebreak = (r.c.start_time.desc(), r.c.run_id.asc())
    rest_order = [order_clause(k, asc) for k, (_, asc) in zip(rest_labels, rest, strict=True)]

    columns = [_utf8(run_json_column(dialect), dialect)] if as_json else run_columns(dialect)
    walk = lm.join(r, r.c.run_id == lm.c.run_id)
    head_ids = (
        select(r.c.run_id, r.c.start_time, lm.c.value.label("order_0"), *rest_labels)
        .select_from(walk)
        .where(*has_value, *where_walked)
        .order_by(value_order, *rest_order, *tiebreak)
        .limit(_LIMIT)
        .offset(_OFFSET)
    )
    # At offset 0 the columns are built in the walk itself: it builds them only for the
    # rows it keeps (it sorts ties as it goes and stops at the limit), which saves the
    # second lookup of each run. Past an offset they would be built for skipped rows too.
    first_head = (
        select(*columns)
        .select_from(walk)
        .where(*has_value, *where_walked)
        .order_by(value_order, *(order_clause(e, asc) for e, asc in rest), *tiebreak)
        .limit(_LIMIT)
    )
    # Without other order keys, the index's order is the page's but for ties on the value
    # (start_time DESC, run_id): broken in Python, it spares SQLite a sort of each group of
    # equal values, which costs ~15 % of the walk even when every group is one row.
    first_by_value = None
    if not rest:
        first_by_value = (
            select(*columns, lm.c.value, r.c.start_time, r.c.run_id)
            .select_from(walk)
            .where(*has_value, *where_walked)
            .order_by(value_order)
            .limit(_LIMIT)
        )
    head_count = select(func.count()).select_from(walk).where(*has_value, *where_walked)
    sample = select(lm.c.run_id).where(*has_value).order_by(value_order).limit(SAMPLE).subquery()
    passing = (
        select(func.count())
        .select_from(sample.join(r, r.c.run_id == sample.c.run_id))
        .where(*scope, *([] if walked is None else [_reading_run_id(walked, sample.c.run_id)]))
        .scalar_subquery()
    )
    sampled = select(func.count()).select_from(sample).scalar_subquery()
    counted = select(func.count()).select_from(r).where(*scope).scalar_subquery()
    if dialect == "sqlite":
        # SQLite would rather drive the join from runs and sort them all; the index is
        # what lets it stop early (it sorts only runs tied on the metric). The count is
        # left to drive from runs, in their stored order.
        hint = f"INDEXED BY {KEY_VALUE_INDEX}"
        head_ids = head_ids.with_hint(lm, hint, "sqlite")
        first_head = first_head.with_hint(lm, hint, "sqlite")
        if first_by_value is not None:
            first_by_value = first_by_value.with_hint(lm, hint, "sqlite")
    has = select(literal(1)).where(
        t.latest_metrics.c.run_id == r.c.run_id,
        t.latest_metrics.c.key == first.key.name,
        t.latest_metrics.c.is_nan == false(),
    )
    tail_ids = (
        select(r.c.run_id, r.c.start_time, *rest_labels)
        .where(*where, ~has.exists())
        .order_by(*rest_order, *tiebreak)
        .limit(_LIMIT)
        .offset(_OFFSET)
    )
    tail = None if needs_value else _with_columns(tail_ids, columns, [a for _, a in rest], 1)
    return MetricOrderPlan(
        probe=select(counted, sampled, passing),
        head=_with_columns(head_ids, columns, [first.ascending, *(asc for _, asc in rest)], 0),
        first_head=first_head,
        first_by_value=first_by_value,
        head_count=head_count,
        tail=tail,
    )


def _ties_broken(rows: list[Row[Any]], limit: int) -> list[Any] | None:
    """Return the first ``limit`` of ``rows`` (read in the metric's index order, each ending
    in value, start_time, run_id) in the search's order, without those three columns; or
    None when a group of equal values may go on past the rows read (the caller then reads
    the page sorted by SQLite).

    Equal values come together in the index, so only the order inside each such group is
    wrong: it must be start_time DESC, then run_id (the index has run_id ASC or DESC).
    """
    if len(rows) > limit:
        if rows[limit][-3] == rows[limit - 1][-3]:
            return None
        rows = rows[:limit]
    values = [row[-3] for row in rows]
    if len(set(values)) < len(values):  # ties (rare for measured values): sort each group
        ordered: list[Row[Any]] = []
        start = 0
        for i in range(1, len(rows) + 1):
            if i == len(rows) or values[i] != values[start]:
                group = rows[start:i]
                if len(group) > 1:
                    group.sort(key=lambda row: row[-1])  # run_id ASC, then (stable)
                    group.sort(key=lambda row: row[-2], reverse=True)  # start_time DESC
                ordered += group
                start = i
        rows = ordered
    return [row[:-3] for row in rows]


def _split_filter(
    expr: FilterExpr | None, name: str
) -> tuple[list[Comparison], FilterExpr | None, bool]:
    """Return (conditions bounding metric ``name``, the rest of the filter, whether the
    filter needs a non-NaN value of ``name``) for a filter's top-level conjunction.

    A comparison of the metric with a number (``=``, ``<``, ``<=``, ``>``, ``>=``) bounds
    it; every condition on it but ``is null`` / ``is not null`` needs a value (NaN never
    matches, see ``keel.tracking.filter_sql``), so then no run of the tail can match.
    """
    conjuncts: list[FilterExpr] = []
    pending = [] if expr is None else [expr]
    while pending:
        item = pending.pop(0)
        if isinstance(item, And):
            pending[:0] = item.items
        else:
            conjuncts.append(item)
    bounds: list[Comparison] = []
    others: list[FilterExpr] = []
    needs_value = False
    for item in conjuncts:
        if isinstance(item, Comparison) and item.key.kind == "metric" and item.key.name == name:
            needs_value = needs_value or item.op not in ("is null", "is not null")
            if item.op in _CMP and isinstance(item.value, Decimal):
                bounds.append(item)
                continue
        others.append(item)
    rest = None if not others else others[0] if len(others) == 1 else And(tuple(others))
    return bounds, rest, needs_value


def _reading_run_id(clause: ColumnElement[bool], run_id: Any) -> ColumnElement[bool]:
    """Return ``clause`` (a filter on ``runs``) with ``runs.run_id`` replaced by ``run_id``."""
    column = t.runs.c.run_id
    replaced: ColumnElement[bool] = replacement_traverse(
        clause, {}, lambda element: run_id if element is column else None
    )
    return replaced


def _utf8(text: ColumnElement[str], dialect: str) -> ColumnElement[Any]:
    """Return ``text`` as its UTF-8 bytes on SQLite, so the server's body is joined from
    them as they are: no 1,000 texts decoded into str and the ~800 kB body encoded back.

    PostgreSQL keeps the text: a bytea travels as hex, twice the size, decoded by psycopg.
    """
    if dialect != "sqlite":
        return text
    return cast(text, LargeBinary)  # the text's bytes (Keel's SQLite files are UTF-8)


def _not_nan(lm: Alias, dialect: str) -> ColumnElement[bool]:
    """Return the condition that the walked latest_metrics row is not NaN.

    On SQLite, is_nan is not in the (key, value) index: reading it costs a lookup of the
    row for every entry walked. A NaN is stored with value 0 (``SqlTrackingStore`` writes
    it so, as SQLite cannot store NaN), so only a 0 needs that lookup; the others are
    decided from the index (~10 % of the walk).
    """
    if dialect != "sqlite":
        return lm.c.is_nan == false()
    row = t.latest_metrics.alias("nan_check")
    looked_up = select(literal(1)).where(
        row.c.run_id == lm.c.run_id, row.c.key == lm.c.key, row.c.is_nan == false()
    )
    return or_(lm.c.value != 0, looked_up.exists())


def _with_columns(
    ids: Select[Any], columns: Sequence[ColumnElement[Any]], ascending: Sequence[bool], first: int
) -> Select[Any]:
    """Return the page of ``ids`` joined to its runs' ``columns``, in the same order.

    As in ``build_search``: the page's ids first, then the columns of those runs only,
    sorted again by the values the page carries (a join keeps no order).
    """
    from keel.tracking.filter_sql import order_clause

    r = t.runs
    page = ids.subquery("page")
    keys = [page.c[f"order_{first + i}"] for i in range(len(ascending))]
    return (
        select(*columns)
        .select_from(page.join(r, r.c.run_id == page.c.run_id))
        .order_by(
            *(order_clause(key, asc) for key, asc in zip(keys, ascending, strict=True)),
            page.c.start_time.desc(),
            page.c.run_id.asc(),
        )
    )
