"""The tracking SDK's read side and module-level shortcuts on the active run."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, NotFound
from keel.tracking.entities import ArtifactEntry, DatasetInput, Experiment, Metric, PagedList, Run
from keel.tracking.fluent import clean_artifact_path, require_active_run
from keel.tracking.validation import check_id, check_key, check_name

if TYPE_CHECKING:
    from keel.stores import Stores

__all__ = [
    "create_experiment",
    "download_artifacts",
    "gc_runs",
    "get_experiment",
    "get_metric_history",
    "get_run",
    "get_run_inputs",
    "list_artifacts",
    "list_experiments",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "search_runs",
    "set_tag",
]


def _stores() -> Stores:
    from keel.stores import current_stores

    return current_stores()


def create_experiment(
    name: str, *, description: str | None = None, tags: Mapping[str, str] | None = None
) -> Experiment:
    """Return a new experiment named ``name`` (``AlreadyExists`` if taken)."""
    clean_tags = {check_key("tag", k): str(v) for k, v in (tags or {}).items()}
    return _stores().tracking.create_experiment(
        check_name("experiment", name), description=description, tags=clean_tags
    )


def get_experiment(name_or_id: str) -> Experiment:
    """Return the experiment with this name (or id)."""
    return find_experiment(_stores().tracking, name_or_id)


def find_experiment(tracking: Any, name_or_id: str) -> Experiment:
    """Return ``tracking``'s experiment with this name (or id); ``NotFound`` if none.

    Shared by the SDK and the server (a search by experiment names resolves them there).
    """
    found = tracking.get_experiment_by_name(check_name("experiment", name_or_id))
    if found is not None:
        return found
    try:
        return tracking.get_experiment(check_id("experiment", name_or_id))
    except (InvalidInput, NotFound):
        raise NotFound(f"no experiment named {name_or_id!r}") from None


def list_experiments(*, include_deleted: bool = False) -> list[Experiment]:
    """Return every experiment, oldest first."""
    return _stores().tracking.list_experiments(include_deleted=include_deleted)


def get_run(run_id: str) -> Run:
    """Return a run with its params, tags and latest metric values."""
    return _stores().tracking.get_run(check_id("run", run_id))


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    """Return every logged point of metric ``key`` in a run, by step."""
    return _stores().tracking.get_metric_history(check_id("run", run_id), check_key("metric", key))


def get_run_inputs(run_id: str) -> list[DatasetInput]:
    """Return the datasets a run logged."""
    return _stores().tracking.get_inputs(check_id("run", run_id))


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: str | Sequence[str] | None = None,
    max_results: int = 1000,
    page_token: str | None = None,
) -> PagedList[Run]:
    """Return one page of runs matching ``filter``; ``.next_page_token`` continues.

    ``experiment`` is a name or list of names (all experiments when None). The filter
    language: ``metrics.acc > 0.9 and params.model = 'rf' and tags.team in ('a', 'b')``,
    and the run's dataset inputs: ``datasets.digest = '…'``, ``datasets.name = 'train'``,
    ``datasets.context in ('training', 'eval')`` (see ``keel.tracking.filter``).
    """
    tracking = _stores().tracking
    if experiment is None:
        ids = [e.experiment_id for e in tracking.list_experiments()]
    else:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        by_names = getattr(tracking, "search_runs_by_names", None)
        if by_names is not None:  # the REST store: the server resolves them, one request
            return by_names(
                [check_name("experiment", n) for n in names],
                filter=filter,
                order_by=order_by,
                max_results=max_results,
                page_token=page_token,
            )
        ids = [find_experiment(tracking, n).experiment_id for n in names]
    return tracking.search_runs(
        ids, filter=filter, order_by=order_by, max_results=max_results, page_token=page_token
    )


def list_artifacts(run_id: str, path: str | None = None) -> list[ArtifactEntry]:
    """Return a run's artifact files under ``path`` (all when None)."""
    prefix = clean_artifact_path(path) if path else None
    return _stores().tracking.list_artifacts(check_id("run", run_id), prefix)


def download_artifacts(run_id: str, path: str | None = None, dst: str | Path = ".") -> Path:
    """Download a run's artifact file or folder into ``dst``; return the local path.

    Every file's digest is verified as it arrives.
    """
    stores = _stores()
    prefix = clean_artifact_path(path) if path else ""
    entries = stores.tracking.list_artifacts(check_id("run", run_id), prefix or None)
    if not entries:
        raise NotFound(f"run {run_id} has no artifact at {prefix or '/'!r}")
    root = Path(dst)
    for entry in entries:
        stores.artifacts.get_file(entry.digest, root / entry.path, name=entry.path)
    return root / prefix if prefix else root


def gc_runs(timeout: float | None = None) -> list[str]:
    """Mark runs whose writer stopped heart-beating failed; return their ids."""
    from keel.config import get_settings

    seconds = get_settings().heartbeat_timeout if timeout is None else timeout
    if seconds < 0:
        raise InvalidInput("timeout must be zero or positive seconds")
    return _stores().tracking.fail_stale_runs(int(time.time() * 1000), int(seconds * 1000))


def log_param(key: str, value: Any) -> None:
    """Record a parameter on the active run."""
    require_active_run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Record parameters on the active run."""
    require_active_run().log_params(params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Queue a metric point on the active run."""
    require_active_run().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    """Queue metric points on the active run."""
    require_active_run().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    require_active_run().set_tag(key, value)
