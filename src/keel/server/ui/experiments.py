"""UI pages: the experiments list (``/``) and an experiment's runs table.

The runs table is one page of ``search_runs`` (``PAGE_SIZE`` rows, server-side filter,
order and page token); it shows a few metric and param columns of that page's runs by
default, and the user picks others from the experiment's distinct keys, which the page
fetches from ``/experiments/{id}/keys`` only when the picker opens.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.errors import InvalidInput, KeelError
from keel.server.deps import get_stores
from keel.server.ui.render import UiRoute, page, page_id
from keel.server.ui.session import require_login
from keel.stores import Stores
from keel.tracking.entities import Run
from keel.tracking.search import decode_page_token, encode_page_token

__all__ = ["PAGE_SIZE", "Column", "parse_columns", "router"]

router = APIRouter(
    route_class=UiRoute, include_in_schema=False, dependencies=[Depends(require_login)]
)

PAGE_SIZE = 50
MAX_COLUMNS = 40
DEFAULT_METRICS = 4
DEFAULT_PARAMS = 3
_KINDS = {"metrics": "metric", "params": "param", "tags": "tag"}

# Attribute columns always shown: (label, search-language key or None when not sortable).
ATTRIBUTE_COLUMNS = (
    ("Run", "attributes.name"),
    ("Status", "attributes.status"),
    ("Started", "attributes.start_time"),
    ("Duration", None),
    ("User", "attributes.user"),
)


@dataclass(frozen=True)
class Column:
    """A metric, param or tag column of the runs table."""

    kind: str  # "metrics", "params" or "tags"
    key: str

    @property
    def spec(self) -> str:
        """The column as written in ``?columns=``: ``metrics.acc``."""
        return f"{self.kind}.{self.key}"

    @property
    def order_key(self) -> str:
        """The column as a key of the search language (back-ticked, so any key works)."""
        return f"{self.kind}.`{self.key}`"

    def value(self, run: Run) -> Any:
        """Return this column's value in ``run`` (None when the run has none)."""
        return getattr(run, self.kind).get(self.key)


def parse_columns(text: str) -> list[Column]:
    """Return the columns of ``metrics.a,params.b``; ``InvalidInput`` for a malformed one."""
    columns: list[Column] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        kind, _, key = item.partition(".")
        if kind not in _KINDS or not key:
            raise InvalidInput(
                f"unknown column {item[:80]!r}; columns are metrics.<key>, params.<key> "
                "or tags.<key>, separated by commas"
            )
        column = Column(kind, key)
        if column not in columns:
            columns.append(column)
    if len(columns) > MAX_COLUMNS:
        raise InvalidInput(f"{len(columns)} columns chosen; show at most {MAX_COLUMNS} at once")
    return columns


def _most_common(counts: Counter[str], n: int) -> list[str]:
    # The keys most of the page's runs have, then by name: the columns worth a look first.
    return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _default_columns(runs: list[Run]) -> list[Column]:
    metrics = Counter(k for run in runs for k in run.metrics)
    params = Counter(k for run in runs for k in run.params)
    return [Column("metrics", k) for k in _most_common(metrics, DEFAULT_METRICS)] + [
        Column("params", k) for k in _most_common(params, DEFAULT_PARAMS)
    ]


def _sort_state(order_by: str) -> tuple[str, bool]:
    # The single key the table is sorted by ("" when none) and whether it is ascending.
    text = order_by.strip()
    ascending = not text.lower().endswith(" desc")
    for suffix in (" desc", " asc"):
        if text.lower().endswith(suffix):
            text = text[: -len(suffix)].strip()
    return text, ascending


@router.get("/")
def experiments(request: Request, stores: Stores = Depends(get_stores)) -> Response:
    """The experiments list."""
    found = sorted(stores.tracking.list_experiments(), key=lambda e: -e.created_at)
    return page(request, "experiments.html", experiments=found)


@router.get("/experiments/{experiment_id}")
def runs_table(
    request: Request,
    experiment_id: str,
    filter: str = Query(default="", max_length=10_000),
    order_by: str = Query(default="", max_length=1_000),
    page_token: str = Query(default="", max_length=200),
    columns: str | None = Query(default=None, max_length=20_000),
    stores: Stores = Depends(get_stores),
) -> Response:
    """One page of an experiment's runs, filtered and sorted by the search language."""
    experiment = stores.tracking.get_experiment(page_id("experiment", experiment_id))
    error = None
    runs: list[Run] = []
    next_token = None
    offset = 0
    chosen: list[Column] | None = None
    try:
        offset = decode_page_token(page_token or None)
        chosen = None if columns is None else parse_columns(columns)
        found = stores.tracking.search_runs(
            [experiment.experiment_id],
            filter=filter or None,
            order_by=order_by or None,
            max_results=PAGE_SIZE,
            page_token=page_token or None,
        )
        runs, next_token = list(found), found.next_page_token
    except KeelError as exc:
        error = exc.message
    shown = _default_columns(runs) if chosen is None else chosen
    sort_key, ascending = _sort_state(order_by)
    column_specs = ",".join(c.spec for c in shown)
    # Links keep the columns shown; after an error with none chosen, the defaults return.
    pinned = None if error and chosen is None else column_specs
    params = {"filter": filter, "order_by": order_by, "columns": pinned}
    previous = None
    if offset > 0:
        previous = encode_page_token(max(0, offset - PAGE_SIZE)) if offset > PAGE_SIZE else ""
    return page(
        request,
        "runs.html",
        400 if error else 200,
        experiment=experiment,
        runs=runs,
        columns=shown,
        attribute_columns=ATTRIBUTE_COLUMNS,
        filter=filter,
        order_by=order_by,
        sort_key=sort_key,
        ascending=ascending,
        params=params,
        column_specs=column_specs,
        error=error,
        first=offset + 1,
        next_token=next_token,
        previous_token=previous,
    )


@router.get("/experiments/{experiment_id}/keys")
def experiment_keys(experiment_id: str, stores: Stores = Depends(get_stores)) -> Any:
    """The experiment's distinct metric, param and tag keys, for the column picker."""
    keys = stores.tracking.get_experiment_keys(page_id("experiment", experiment_id))
    return keys.to_dict()
