"""``write_runs`` on SQLite and PostgreSQL: many complete or partial runs, one transaction.

A batch costs a fixed number of statements, not a number per run: the runs it names are
read (on PostgreSQL also locked, in run_id order like every multi-run write) in one
SELECT; new runs, tags, params and artifact entries are written with one executemany
each; the ends and JSON copies (``keel.tracking.run_json``) of runs that already existed
with one UPDATE executemany each; and the audit entries — the same actions the one-run
methods append (``run.create``, ``run.params``, ``run.tags``, ``run.inputs``,
``run.artifacts``, ``run.end``) — are chained in one append, last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy import exc as sa_exc

from keel.errors import Conflict, InvalidInput, NotFound
from keel.governance.chain import Entry, append
from keel.store import schema as t
from keel.store.clock import now_ms
from keel.store.database import Database
from keel.tracking.entities import RunStatus
from keel.tracking.run_json import EMPTY, dump_strings
from keel.tracking.run_writes import RunWrite, check_run_writes
from keel.tracking.sql_assets import inputs_change, insert_inputs

__all__ = ["SqlRunWrites"]

_r = t.runs
_IDS = bindparam("ids", expanding=True)
_EXISTING = (
    select(_r.c.run_id, _r.c.experiment_id, _r.c.parent_run_id, _r.c.params_json, _r.c.tags_json)
    .where(_r.c.run_id.in_(_IDS))
    .order_by(_r.c.run_id)
    .with_for_update()
)
_EXPERIMENTS = select(t.experiments.c.experiment_id, t.experiments.c.lifecycle_stage).where(
    t.experiments.c.experiment_id.in_(_IDS)
)
_RUN_IDS = select(_r.c.run_id).where(_r.c.run_id.in_(_IDS))
_PARAMS = select(t.params.c.run_id, t.params.c.key, t.params.c.value).where(
    t.params.c.run_id.in_(_IDS)
)
_END = (
    update(_r)
    .where(_r.c.run_id == bindparam("id"))
    .values(status=bindparam("status_"), end_time=bindparam("end_"), writer=None)
)
_COPIES = (
    update(_r)
    .where(_r.c.run_id == bindparam("id"))
    .values(params_json=bindparam("params_"), tags_json=bindparam("tags_"))
)


class SqlRunWrites:
    """``write_runs`` (mixed into ``SqlTrackingStore``)."""

    db: Database  # provided by SqlTrackingStore

    def write_runs(self, writes: Sequence[RunWrite]) -> None:
        """Write complete or partial runs in one transaction (see ``keel.tracking.run_writes``)."""
        checked = check_run_writes(writes)
        if not checked:
            return
        try:
            self._write(checked)
        except sa_exc.IntegrityError:
            # PostgreSQL: two writers both found a run absent and inserted it; the one to
            # commit second failed here, and on its second try finds the run and updates it.
            try:
                self._write(checked)
            except sa_exc.IntegrityError as exc:
                raise Conflict(f"the runs could not be written: {exc.orig}") from None

    def _write(self, writes: list[RunWrite]) -> None:
        with self.db.write() as conn:
            found = {row.run_id: row for row in conn.execute(_EXISTING, {"ids": _ids(writes)})}
            _check_targets(conn, writes, found, [w for w in writes if w.run_id not in found])
            logged = _params_of(conn, [w.run_id for w in writes if w.params and w.run_id in found])
            rows = _Rows()
            for w in writes:
                rows.add(w, found.get(w.run_id), _new_params(w, logged.get(w.run_id, {})))
            if rows.runs:  # in batch order: a parent created in the batch is inserted first
                conn.execute(t.runs.insert(), rows.runs)
            if rows.tags:
                self.db.upsert(conn, t.tags, rows.tags, keys=["run_id", "key"], update=["value"])
            if rows.params:
                conn.execute(t.params.insert(), rows.params)
            for w in writes:
                if w.inputs:
                    insert_inputs(self.db, conn, w.run_id, list(w.inputs))
            if rows.artifacts:
                self.db.upsert(
                    conn,
                    t.run_artifacts,
                    rows.artifacts,
                    keys=["run_id", "path"],
                    update=["digest", "size", "created_at"],
                )
            if rows.ends:
                conn.execute(_END, rows.ends)
            if rows.copies:
                conn.execute(_COPIES, rows.copies)
            append(conn, rows.entries)


class _Rows:
    """The rows and audit entries of one batch, gathered run by run."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.tags: list[dict[str, Any]] = []
        self.params: list[dict[str, Any]] = []
        self.artifacts: list[dict[str, Any]] = []
        self.ends: list[dict[str, Any]] = []
        self.copies: list[dict[str, Any]] = []  # JSON copies of runs that existed
        self.entries: list[Entry] = []

    def add(self, w: RunWrite, row: Any, params: dict[str, str]) -> None:
        """Gather ``w`` (``row``: its run as it was, None if new; ``params``: the new ones)."""
        run_id, entries = w.run_id, self.entries
        self.tags += [{"run_id": run_id, "key": k, "value": v} for k, v in w.tags.items()]
        self.params += [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()]
        if row is None:
            self.runs.append(_run_row(w, params))
            change = {
                "experiment_id": w.experiment_id,
                "name": w.name,
                "user": w.user,
                "parent_run_id": w.parent_run_id,
                "tags": dict(w.tags),
            }
            entries.append(Entry("run.create", "run", run_id, change))
        elif params or w.tags:
            params_json, tags_json = (
                _merged(row.params_json, params),
                _merged(row.tags_json, w.tags),
            )
            self.copies.append({"id": run_id, "params_": params_json, "tags_": tags_json})
        if params:
            entries.append(Entry("run.params", "run", run_id, params))
        if row is not None and w.tags:
            entries.append(Entry("run.tags", "run", run_id, dict(w.tags)))
        if w.inputs:
            entries.append(Entry("run.inputs", "run", run_id, inputs_change(list(w.inputs))))
        if w.artifacts:
            by_path = {a.path: a for a in w.artifacts}  # one row per path: the last one
            at = now_ms()
            self.artifacts += [
                {"run_id": run_id, "path": a.path, "digest": a.digest, "size": a.size,
                 "created_at": at}
                for a in by_path.values()
            ]  # fmt: skip
            change = {"artifacts": {a.path: a.digest for a in by_path.values()}}
            entries.append(Entry("run.artifacts", "run", run_id, change))
        if w.status is not None:
            status = RunStatus.parse(w.status).value
            if row is not None:
                self.ends.append({"id": run_id, "status_": status, "end_": w.end_time})
            entries.append(
                Entry("run.end", "run", run_id, {"status": status, "end_time": w.end_time})
            )


def _ids(writes: Sequence[RunWrite]) -> list[str]:
    return [w.run_id for w in writes]


def _check_targets(
    conn: Connection, writes: list[RunWrite], found: Mapping[str, Any], new: list[RunWrite]
) -> None:
    """Raise unless every run exists or is created, in a live experiment, under its parent."""
    for w in writes:
        row = found.get(w.run_id)
        if row is None and not w.creates:
            raise NotFound(f"no run with id {w.run_id!r}")
        if (
            row is not None
            and w.creates
            and (row.experiment_id != w.experiment_id or row.parent_run_id != w.parent_run_id)
        ):
            raise Conflict(
                f"run {w.run_id} already exists in experiment {row.experiment_id} under parent "
                f"{row.parent_run_id}; a write creating it names experiment {w.experiment_id} "
                f"and parent {w.parent_run_id} (use a new run id)"
            )
    experiments = sorted({w.experiment_id for w in new if w.experiment_id is not None})
    if experiments:
        stages = dict(conn.execute(_EXPERIMENTS, {"ids": experiments}).all())
        for experiment_id in experiments:
            stage = stages.get(experiment_id)
            if stage is None:
                raise NotFound(f"no experiment with id {experiment_id!r}")
            if stage != "active":
                raise Conflict(f"experiment {experiment_id!r} is deleted; restore it first")
    created: set[str] = set()
    later = {w.run_id for w in new}
    outside: set[str] = set()
    for w in new:
        parent = w.parent_run_id
        if parent is not None and parent not in created and parent not in found:
            if parent in later:
                raise InvalidInput(
                    f"run {w.run_id}'s parent {parent} is created later in the same batch; "
                    "put the parent's write first"
                )
            outside.add(parent)
        created.add(w.run_id)
        later.discard(w.run_id)
    if outside:
        present = set(conn.execute(_RUN_IDS, {"ids": sorted(outside)}).scalars())
        missing = sorted(outside - present)
        if missing:
            raise NotFound(f"parent run {missing[0]!r} does not exist")


def _params_of(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    if run_ids:
        for run_id, key, value in conn.execute(_PARAMS, {"ids": run_ids}):
            out.setdefault(run_id, {})[key] = value
    return out


def _new_params(write: RunWrite, logged: Mapping[str, str]) -> dict[str, str]:
    """Return the write's params not logged yet (``Conflict`` if one would change)."""
    for key, value in write.params.items():
        if key in logged and logged[key] != value:
            raise Conflict(
                f"param {key!r} of run {write.run_id} is already {logged[key]!r}; params are "
                f"immutable, so it cannot become {value!r} (log it under a new key)"
            )
    return {k: v for k, v in write.params.items() if k not in logged}


def _merged(text: str, values: Mapping[str, str]) -> str:
    if not values:
        return text
    merged = orjson.loads(text)
    merged.update(values)
    return dump_strings(merged)


def _run_row(w: RunWrite, params: Mapping[str, str]) -> dict[str, Any]:
    ended = w.status is not None
    return {
        "run_id": w.run_id,
        "experiment_id": w.experiment_id,
        "name": w.name,
        "status": RunStatus.parse(w.status).value if ended else RunStatus.RUNNING.value,  # type: ignore[arg-type]
        "start_time": w.start_time,
        "end_time": w.end_time,
        "user": w.user,
        "source": w.source,
        "git_commit": w.git_commit,
        "git_dirty": w.git_dirty,
        "parent_run_id": w.parent_run_id,
        "lifecycle_stage": "active",
        "heartbeat_at": w.start_time,
        "writer": None if ended else w.writer,
        "params_json": dump_strings(dict(params)),
        "metrics_json": EMPTY,
        "tags_json": dump_strings(dict(w.tags)),
    }
