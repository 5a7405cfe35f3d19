"""Run search on SQL: one page of ``Run``s, or the page as the REST API's JSON body."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from keel.errors import InvalidInput
from keel.store.database import Database
from keel.tracking.entities import PagedList, Run
from keel.tracking.search import build_search, encode_page_token
from keel.tracking.sql_rows import hydrate
from keel.tracking.sql_search_metric import metric_order_plan

__all__ = ["MAX_OFFSET", "SqlRunSearch"]

# SQLite and PostgreSQL bind 64-bit integers; no search reaches past this many runs.
MAX_OFFSET = 2**62


class SqlRunSearch:
    """Searches over runs (mixed into ``SqlTrackingStore``); see ``keel.tracking.search``."""

    # Provided by SqlTrackingStore.
    db: Database

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Return one page of runs matching ``filter`` in the given experiments."""
        rows, offset = self._page(
            experiment_ids, filter, order_by, max_results, page_token, as_json=False
        )
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        return PagedList(hydrate(rows[:max_results]), token)

    def search_runs_json(
        self,
        experiment_ids: Sequence[str],
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> bytes:
        """Return ``search_runs``' page as the REST API's JSON body, built by the database.

        ``{"runs": [<Run.to_dict()>, ...], "next_page_token": ...}``, with no ``Run`` built.
        """
        rows, offset = self._page(
            experiment_ids, filter, order_by, max_results, page_token, as_json=True
        )
        token = encode_page_token(offset + max_results) if len(rows) > max_results else None
        end = f'],"next_page_token":{orjson.dumps(token).decode()}}}'
        runs = [row[0] for row in rows[:max_results]]
        if not runs:
            return ('{"runs":[' + end).encode()
        # One join of the ~800 kB body: its ends go onto the first and last run. The
        # metric walk's rows are UTF-8 bytes already; the general query's are str.
        if type(runs[0]) is bytes:
            runs[0] = b'{"runs":[' + runs[0]
            runs[-1] += end.encode()  # (the same item as runs[0] on a page of one)
            return b",".join(runs)
        runs[0] = '{"runs":[' + runs[0]
        runs[-1] += end
        return ",".join(runs).encode()

    def _page(
        self,
        experiment_ids: Sequence[str],
        filter_text: str | None,
        order_by: Sequence[str] | str | None,
        max_results: int,
        page_token: str | None,
        *,
        as_json: bool,
        plan: str = "auto",
    ) -> tuple[list[Any], int]:
        """Return (the page's rows plus one if there is more, the page's offset).

        ``plan`` is "auto" (the metric-order walk when it pays, see
        ``keel.tracking.sql_search_metric``), "general" (always ``build_search``'s query)
        or "metric" (the walk whenever the order allows it); the last two are for tests.
        """
        # build_search checks every argument (and caches its statement), so the walk's
        # plan is built only from arguments known to be good.
        query, offset = build_search(
            self.db.dialect, experiment_ids, filter_text, order_by, max_results, page_token,
            as_json=as_json,
        )  # fmt: skip
        if offset > MAX_OFFSET:  # a forged token: no database takes an offset this large
            raise InvalidInput(f"invalid page token {page_token[:40]!r}; pass back one Keel gave")
        walk = None
        order = (order_by,) if isinstance(order_by, str) else tuple(order_by or ())
        ids = tuple(experiment_ids)
        listed = isinstance(experiment_ids, list | tuple)
        if plan != "general" and order and listed and _all_text(ids) and _all_text(order):
            walk = metric_order_plan(self.db.dialect, ids, filter_text, order, as_json)
        with self.db.read() as conn:
            if walk is not None and (
                plan == "metric" or walk.worth_it(conn, offset, max_results + 1)
            ):
                return walk.page(conn, offset, max_results + 1), offset
            return list(conn.execute(query)), offset


def _all_text(items: tuple[Any, ...]) -> bool:
    # The walk's plans are cached by their arguments: only hashable, checked ones.
    return all(type(item) is str for item in items)
