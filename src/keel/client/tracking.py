"""``RestTrackingStore``: the tracking store interface, through a Keel server.

Each method is one request to the endpoint of the same name, and rebuilds the same
entities the SQL store returns (``RunStatus``, float metrics with NaN and ±inf). Server
errors come back as the same ``KeelError`` subclasses. A metric batch larger than one
request may carry is split; params and tags travel with the first part, so a param
conflict still writes nothing.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from keel.client.http import KeelHttp
from keel.errors import NotFound
from keel.tracking.entities import (
    ArtifactEntry,
    DatasetInput,
    Experiment,
    ExperimentKeys,
    Metric,
    PagedList,
    Run,
    RunSnapshot,
    RunStatus,
    float_to_json,
)
from keel.tracking.run_writes import RunWrite, check_run_writes
from keel.tracking.store import MetricRow, TrackingStore

__all__ = ["BATCH_METRICS", "RestTrackingStore", "float_from_json", "run_from_dict"]

# Points per request: far below the server's cap, so a batch stays a few MB of JSON.
BATCH_METRICS = 20_000
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_FLOAT = frozenset({float})


def float_from_json(value: float | int | str) -> float:
    """Return the float a JSON value carries ("NaN", "Infinity", "-Infinity" included)."""
    if isinstance(value, str):
        return _NON_FINITE[value]
    return float(value)


def experiment_from_dict(d: Mapping[str, Any]) -> Experiment:
    """Return the ``Experiment`` a server sent."""
    return Experiment(
        experiment_id=d["experiment_id"],
        name=d["name"],
        artifact_location=d.get("artifact_location"),
        lifecycle_stage=d["lifecycle_stage"],
        created_at=d["created_at"],
        updated_at=d["updated_at"],
        description=d.get("description"),
        tags=dict(d.get("tags") or {}),
    )


def _metrics_from_json(metrics: Mapping[str, Any]) -> dict[str, float]:
    # Nearly always every value is already a float (a search page holds some 10,000).
    if set(map(type, metrics.values())) <= _FLOAT:
        return dict(metrics)
    return {k: float_from_json(v) for k, v in metrics.items()}


def run_from_dict(d: Mapping[str, Any]) -> Run:
    """Return the ``Run`` a server sent."""
    return Run(
        run_id=d["run_id"],
        experiment_id=d["experiment_id"],
        name=d["name"],
        status=RunStatus(d["status"]),
        start_time=d["start_time"],
        end_time=d.get("end_time"),
        user=d["user"],
        source=d.get("source"),
        git_commit=d.get("git_commit"),
        git_dirty=d.get("git_dirty"),
        parent_run_id=d.get("parent_run_id"),
        lifecycle_stage=d["lifecycle_stage"],
        heartbeat_at=d.get("heartbeat_at"),
        params=dict(d.get("params") or {}),
        metrics=_metrics_from_json(d.get("metrics") or {}),
        tags=dict(d.get("tags") or {}),
    )


_STATUS = {status.value: status for status in RunStatus}


def _runs_from_page(runs: list[dict[str, Any]]) -> list[Run]:
    # A search page's runs (some 1,000): built positionally from the freshly decoded
    # dicts, which nothing else holds, so their params, metrics and tags are not copied.
    status = _STATUS
    out = []
    append = out.append
    for d in runs:
        metrics = d["metrics"]
        if not set(map(type, metrics.values())) <= _FLOAT:
            metrics = {k: float_from_json(v) for k, v in metrics.items()}
        append(
            Run(
                d["run_id"], d["experiment_id"], d["name"],
                status.get(d["status"]) or RunStatus(d["status"]), d["start_time"],
                d["end_time"], d["user"], d["source"], d["git_commit"], d["git_dirty"],
                d["parent_run_id"], d["lifecycle_stage"], d["heartbeat_at"], d["params"],
                metrics, d["tags"],
            )
        )  # fmt: skip
    return out


def _input_from_dict(d: Mapping[str, Any]) -> DatasetInput:
    return DatasetInput(
        name=d["name"],
        digest=d["digest"],
        source=d.get("source"),
        context=d["context"],
        schema=d.get("schema"),
        profile=d.get("profile"),
    )


def _seg(value: str) -> str:
    # Ids are checked by the server; quoting keeps a hostile one inside its path segment.
    return quote(str(value), safe="")


class RestTrackingStore(TrackingStore):
    """Tracking through a Keel server's REST API."""

    def __init__(self, http: KeelHttp) -> None:
        self.http = http
        # The stores of one configuration share ``http``; when they are dropped (settings
        # changed), close its pooled sockets rather than leave them to the garbage collector.
        weakref.finalize(self, http.close)

    def ping(self) -> None:
        """Return once the server's ``/health`` answers; ``StoreUnavailable`` if not."""
        self.http.request("GET", "/health")

    # -- experiments ---------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        *,
        artifact_location: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """Return a new experiment; ``AlreadyExists`` if the name is taken."""
        body = {
            "name": name,
            "artifact_location": artifact_location,
            "description": description,
            "tags": dict(tags or {}),
        }
        return experiment_from_dict(self.http.request("POST", "/api/v1/experiments", json=body))

    def get_experiment(self, experiment_id: str) -> Experiment:
        """Return the experiment with this id; ``NotFound`` otherwise."""
        found = self.http.request("GET", f"/api/v1/experiments/{_seg(experiment_id)}")
        return experiment_from_dict(found)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """Return the experiment with this name, or None."""
        try:
            found = self.http.request("GET", "/api/v1/experiments/by-name", params={"name": name})
        except NotFound:
            return None
        return experiment_from_dict(found)

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        """Return every experiment, oldest first."""
        params = {"include_deleted": "true" if include_deleted else "false"}
        found = self.http.request("GET", "/api/v1/experiments", params=params)
        return [experiment_from_dict(e) for e in found["experiments"]]

    def delete_experiment(self, experiment_id: str) -> None:
        """Mark an experiment and its runs deleted."""
        self.http.request("DELETE", f"/api/v1/experiments/{_seg(experiment_id)}")

    def get_experiment_keys(self, experiment_id: str) -> ExperimentKeys:
        """Return the distinct metric, param and tag keys of the experiment's active runs."""
        found = self.http.request("GET", f"/api/v1/experiments/{_seg(experiment_id)}/keys")
        return ExperimentKeys(
            metrics=tuple(found["metrics"]),
            params=tuple(found["params"]),
            tags=tuple(found["tags"]),
        )

    # -- runs ----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        name: str,
        user: str,
        start_time: int,
        source: str | None = None,
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        writer: str | None = None,
    ) -> Run:
        """Return a new running run in ``experiment_id``."""
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "user": user,
            "start_time": start_time,
            "source": source,
            "git_commit": git_commit,
            "git_dirty": git_dirty,
            "parent_run_id": parent_run_id,
            "tags": dict(tags or {}),
            "writer": writer,
        }
        return run_from_dict(self.http.request("POST", "/api/v1/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        """Return the run with its params, tags and latest metrics."""
        return run_from_dict(self.http.request("GET", f"/api/v1/runs/{_seg(run_id)}"))

    def end_run(self, run_id: str, status: RunStatus, end_time: int) -> Run:
        """Set a final status and end time; return the updated run."""
        body = {"status": RunStatus.parse(status).value, "end_time": end_time}
        return run_from_dict(
            self.http.request("POST", f"/api/v1/runs/{_seg(run_id)}/end", json=body)
        )

    def claim_run(self, run_id: str, writer: str, now: int, timeout_ms: int) -> Run:
        """Make ``writer`` the run's live writer; ``Conflict`` if another holds it."""
        body = {"writer": writer, "now": now, "timeout_ms": timeout_ms}
        return run_from_dict(
            self.http.request("POST", f"/api/v1/runs/{_seg(run_id)}/claim", json=body)
        )

    def heartbeat(self, run_id: str, writer: str, now: int) -> None:
        """Record that ``writer`` is still alive and writing ``run_id``."""
        body = {"writer": writer, "now": now}
        self.http.request("POST", f"/api/v1/runs/{_seg(run_id)}/heartbeat", json=body)

    def fail_stale_runs(self, now: int, timeout_ms: int) -> list[str]:
        """Mark running runs with no heartbeat for ``timeout_ms`` failed; return their ids."""
        body = {"now": now, "timeout_ms": timeout_ms}
        return list(self.http.request("POST", "/api/v1/runs/fail-stale", json=body)["run_ids"])

    def delete_run(self, run_id: str) -> None:
        """Mark a run deleted."""
        self.http.request("DELETE", f"/api/v1/runs/{_seg(run_id)}")

    def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[MetricRow] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write metrics, params and tags (split into requests of ``BATCH_METRICS`` points)."""
        rows = [[k, float_to_json(v), ts, step] for k, v, ts, step in metrics]
        extra = {"params": dict(params or {}), "tags": dict(tags or {})}
        if not rows and not extra["params"] and not extra["tags"]:
            return
        path = f"/api/v1/runs/{_seg(run_id)}/batch"
        start = 0
        while True:
            part = rows[start : start + BATCH_METRICS]
            self.http.request("POST", path, json={"metrics": part, **extra})
            extra = {}
            start += BATCH_METRICS
            if start >= len(rows):
                return

    def write_runs(self, writes: Sequence[RunWrite]) -> None:
        """Write complete or partial runs in one request (one transaction on the server)."""
        checked = check_run_writes(writes)  # the server checks again; this fails sooner
        if checked:
            body = {"runs": [w.to_dict() for w in checked]}
            self.http.request("POST", "/api/v1/runs/write", json=body)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Return every point of one metric, by step then timestamp."""
        found = self.http.request(
            "GET", f"/api/v1/runs/{_seg(run_id)}/metric-history", params={"key": key}
        )
        return [
            Metric(m["key"], float_from_json(m["value"]), m["step"], m["timestamp"])
            for m in found["metrics"]
        ]

    def log_inputs(self, run_id: str, inputs: Iterable[DatasetInput]) -> None:
        """Record datasets the run consumed."""
        body = {"inputs": [i.to_dict() for i in inputs]}
        if body["inputs"]:
            self.http.request("POST", f"/api/v1/runs/{_seg(run_id)}/inputs", json=body)

    def get_inputs(self, run_id: str) -> list[DatasetInput]:
        """Return the datasets the run consumed."""
        found = self.http.request("GET", f"/api/v1/runs/{_seg(run_id)}/inputs")
        return [_input_from_dict(i) for i in found["inputs"]]

    def add_artifacts(self, run_id: str, entries: Iterable[ArtifactEntry]) -> None:
        """Index artifact files of a run."""
        body = {"entries": [e.to_dict() for e in entries]}
        if body["entries"]:
            self.http.request("POST", f"/api/v1/runs/{_seg(run_id)}/artifacts", json=body)

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactEntry]:
        """Return the run's artifact files under ``prefix`` (all when None), by path."""
        params = {"prefix": prefix} if prefix else None
        found = self.http.request("GET", f"/api/v1/runs/{_seg(run_id)}/artifacts", params=params)
        return [ArtifactEntry(a["path"], a["digest"], a["size"]) for a in found["artifacts"]]

    def get_run_snapshot(self, run_id: str, prefix: str | None = None) -> RunSnapshot:
        """Return the run, its dataset inputs and its artifact files under ``prefix``."""
        params = {"prefix": prefix} if prefix else None
        found = self.http.request("GET", f"/api/v1/runs/{_seg(run_id)}/snapshot", params=params)
        return RunSnapshot(
            run_from_dict(found["run"]),
            [_input_from_dict(i) for i in found["inputs"]],
            [ArtifactEntry(a["path"], a["digest"], a["size"]) for a in found["artifacts"]],
        )

    # -- search --------------------------------------------------------------------------
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
        return self._search(
            {"experiment_ids": list(experiment_ids)}, filter, order_by, max_results, page_token
        )

    def search_runs_by_names(
        self,
        names: Sequence[str],
        *,
        filter: str | None = None,
        order_by: Sequence[str] | str | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """``search_runs`` in the experiments with these names (or ids), resolved by the
        server in the same request (``NotFound`` naming the first unknown one)."""
        return self._search(
            {"experiment_names": list(names)}, filter, order_by, max_results, page_token
        )

    def _search(
        self,
        experiments: dict[str, list[str]],
        filter: str | None,
        order_by: Sequence[str] | str | None,
        max_results: int,
        page_token: str | None,
    ) -> PagedList[Run]:
        body = {
            **experiments,
            "filter": filter,
            "order_by": order_by
            if order_by is None or isinstance(order_by, str)
            else list(order_by),
            "max_results": max_results,
            "page_token": page_token,
        }
        found = self.http.request("POST", "/api/v1/runs/search", json=body)
        return PagedList(_runs_from_page(found["runs"]), found.get("next_page_token"))
