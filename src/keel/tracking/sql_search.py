"""Run search on SQL: one page of ``Run``s, or the page as the REST API's JSON body."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from keel.store.database import Database
from keel.tracking.entities import PagedList, Run
from keel.tracking.search import build_search, encode_page_token
from keel.tracking.sql_rows import hydrate

__all__ = ["SqlRunSearch"]


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
        query, offset = build_search(
            self.db.dialect, experiment_ids, filter, order_by, max_results, page_token
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
            more = len(rows) > max_results
            runs = hydrate(rows[:max_results])
        token = encode_page_token(offset + max_results) if more else None
        return PagedList(runs, token)

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
        query, offset = build_search(
            self.db.dialect, experiment_ids, filter, order_by, max_results, page_token,
            as_json=True,
        )  # fmt: skip
        with self.db.read() as conn:
            texts = conn.execute(query).scalars().all()
        token = encode_page_token(offset + max_results) if len(texts) > max_results else None
        runs = ",".join(texts[:max_results])
        return f'{{"runs":[{runs}],"next_page_token":{orjson.dumps(token).decode()}}}'.encode()
