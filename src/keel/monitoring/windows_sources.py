"""Where the windows' inputs come from: the log, process samples, references, offline metrics.

All of it goes through the given ``Stores``, not the process's current settings, so the
server's jobs and the SDK read the same way. A version's reference is the drift profile of
the last ``training`` dataset its run logged (as ``keel.monitoring.reference_profile``
finds it); its offline metrics are its run's latest metric values, with the metrics
recorded on the version itself at registration taking precedence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.errors import KeelError, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring._profile import ReferenceProfile
    from keel.registry.entities import ModelVersion
    from keel.stores import Stores

__all__ = ["WindowInputs", "load_inputs", "offline_metrics", "read_log", "references_for"]


def _version(stores: Stores, model: str, version: str) -> ModelVersion:
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise NotFound(f"model {model!r} has no version {version!r}") from None
    return stores.registry.get_model_version(model, number)


def references_for(stores: Stores, model: str, version: str) -> ReferenceProfile | str:
    """Return the version's training profile, or the reason it has none (never raises)."""
    from keel.monitoring._profile import ReferenceProfile

    try:
        mv = _version(stores, model, version)
        if mv.run_id is None:
            return f"models:/{model}/{version} was registered without a run"
        inputs = [i for i in stores.tracking.get_inputs(mv.run_id) if i.context == "training"]
        stored = [i for i in inputs if isinstance(i.profile, dict) and "reference" in i.profile]
        if not stored:
            return (
                f"run {mv.run_id} of models:/{model}/{version} logged no training dataset "
                "with a drift profile (run.log_dataset(frame, context='training'))"
            )
        return ReferenceProfile.from_dict(stored[-1].profile["reference"])
    except KeelError as exc:  # a deleted version or an unreadable profile: say so, go on
        return f"models:/{model}/{version}: {exc}"


def offline_metrics(stores: Stores, model: str, version: str) -> dict[str, float]:
    """Return the version's offline metrics (empty when it has none or is gone)."""
    try:
        mv = _version(stores, model, version)
        found: dict[str, float] = {}
        if mv.run_id is not None:
            found.update(stores.tracking.get_run(mv.run_id).metrics)
        found.update(mv.metrics or {})
        return {str(k): float(v) for k, v in found.items()}
    except KeelError:
        return {}


def read_log(
    stores: Stores, deployment: str, start_ms: int, end_ms: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the deployment's prediction log with feedback, and the process samples."""
    from keel.monitoring.health_sampler import artifact_root, empty_samples, read_samples
    from keel.monitoring.prediction_read import read_predictions

    frame = read_predictions(
        deployment, start=start_ms, end=end_ms, with_feedback=True, stores=stores
    )
    try:
        samples = read_samples(artifact_root(stores), start_ms, end_ms)
    except KeelError:  # artifacts behind a server: no samples here, the figures are absent
        samples = empty_samples()
    return frame, samples


@dataclass(frozen=True)
class WindowInputs:
    """What the windows of one deployment are computed from."""

    frame: pd.DataFrame
    samples: pd.DataFrame
    references: dict[tuple[str, str], Any]
    offline: dict[tuple[str, str], dict[str, float]]


def load_inputs(stores: Stores, deployment: str, start_ms: int, end_ms: int) -> WindowInputs:
    """Return the log, samples, and each logged version's reference and offline metrics.

    A deployment with no logged rows in the range must exist in the store (``NotFound``).
    """
    frame, samples = read_log(stores, deployment, start_ms, end_ms)
    if len(frame) == 0:
        # No traffic: a known deployment has empty windows; an unknown one is a NotFound.
        # (keel serve --deployment NAME may log under a name the store does not hold.)
        stores.deployments.get_deployment(deployment)
    keys: list[tuple[str, str]] = []
    if len(frame):
        pairs = frame[["model", "version"]].drop_duplicates()
        keys = [(str(m), str(v)) for m, v in pairs.itertuples(index=False)]
    return WindowInputs(
        frame=frame,
        samples=samples,
        references={key: references_for(stores, *key) for key in keys},
        offline={key: offline_metrics(stores, *key) for key in keys},
    )
