"""Evaluation data for the champion gate, and scoring a model on it with sklearn.metrics.

The data is read once, and the candidate and the champion are scored on that one frame,
so both see exactly the same rows; its BLAKE3 digest and row count go into the gate's
result to show it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput, KeelError, NotFound

if TYPE_CHECKING:
    import pandas as pd

    from keel.registry.packaging import LoadedModel
    from keel.stores import Stores

__all__ = ["EvaluationData", "load_evaluation_data", "score"]

_READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


@dataclass(frozen=True)
class EvaluationData:
    """Features and labels read from one file, with where they came from."""

    source: str
    digest: str
    features: pd.DataFrame
    labels: Any  # a pandas Series

    @property
    def rows(self) -> int:
        """How many rows both models are scored on."""
        return len(self.features)


def _read(path: Path, label: str) -> pd.DataFrame:
    import pandas as pd

    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(
            f"evaluation data {label} must be a .parquet or .csv file, not {path.suffix or 'no'}"
            " suffix"
        )
    try:
        return pd.read_parquet(path) if kind == "parquet" else pd.read_csv(path)
    except (OSError, ValueError) as exc:  # pyarrow and pandas parse errors are ValueErrors
        raise InvalidInput(f"cannot read evaluation data {label}: {exc}") from None


def _from_run(stores: Stores, uri: str, folder: Path) -> tuple[Path, str]:
    rest = uri[len("runs:/") :].strip("/")
    run_id, _, path = rest.partition("/")
    if len(run_id) != 32 or not path:
        raise InvalidInput(f"evaluation data {uri!r} must be runs:/<run-id>/<artifact path>")
    entries = stores.tracking.list_artifacts(run_id, path)
    entry = next((e for e in entries if e.path == path), None)
    if entry is None:
        raise NotFound(f"run {run_id} has no artifact {path!r} to evaluate on; log it first")
    local = folder / Path(path).name
    stores.artifacts.get_file(entry.digest, local, name=uri)  # verified against its digest
    return local, entry.digest


def load_evaluation_data(stores: Stores, data: str, target: str, project: Path) -> EvaluationData:
    """Return the frame ``data`` names, split into features and the ``target`` column.

    ``data`` is a .parquet/.csv path (relative ones are under ``project``) or
    ``runs:/<run-id>/<artifact path>``.
    """
    from keel.tracking.datasets import digest_path

    with tempfile.TemporaryDirectory(prefix="keel-eval-") as tmp:
        if data.startswith("runs:/"):
            path, digest = _from_run(stores, data, Path(tmp))
        else:
            path = Path(data).expanduser()
            path = path if path.is_absolute() else project / path
            if not path.is_file():
                raise NotFound(
                    f"evaluation data {data!r} not found (looked for {path}); relative paths "
                    f"are under the project folder {project}"
                )
            digest = digest_path(path)
        frame = _read(path, repr(data))
    if target not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:20]))
        raise InvalidInput(
            f"evaluation data {data!r} has no target column {target!r} (columns: {shown})"
        )
    if len(frame) == 0:
        raise InvalidInput(f"evaluation data {data!r} has no rows")
    if frame.shape[1] < 2:
        raise InvalidInput(f"evaluation data {data!r} has no feature columns beside {target!r}")
    return EvaluationData(data, digest, frame.drop(columns=[target]), frame[target])


def _binary(labels: Any) -> bool:
    import numpy as np

    values = set(np.unique(np.asarray(labels)).tolist())
    return values <= {0, 1} or values <= {False, True}


def score(metric: str, model: LoadedModel, data: EvaluationData, label: str) -> float:
    """Return ``model``'s ``metric`` on ``data`` (``label`` names the model in errors)."""
    import numpy as np
    from sklearn import metrics as m

    y = data.labels.to_numpy()
    try:
        if metric in ("roc_auc", "log_loss"):
            proba = np.asarray(model.predict_proba(data.features))
            if metric == "log_loss":
                return float(m.log_loss(y, proba))
            if proba.ndim == 2 and proba.shape[1] == 2:
                return float(m.roc_auc_score(y, proba[:, 1]))
            return float(m.roc_auc_score(y, proba, multi_class="ovr"))
        predicted = np.asarray(model.predict(data.features)).ravel()
        if metric in ("f1", "precision", "recall"):
            average = "binary" if _binary(y) else "macro"
            fn = {"f1": m.f1_score, "precision": m.precision_score, "recall": m.recall_score}
            return float(fn[metric](y, predicted, average=average, zero_division=0))
        simple = {
            "accuracy": m.accuracy_score,
            "balanced_accuracy": m.balanced_accuracy_score,
            "r2": m.r2_score,
            "mae": m.mean_absolute_error,
            "mse": m.mean_squared_error,
        }
        if metric == "rmse":
            return float(np.sqrt(m.mean_squared_error(y, predicted)))
        return float(simple[metric](y, predicted))
    except AttributeError as exc:  # no predict_proba
        raise InvalidInput(f"cannot score {label} by {metric}: {exc}") from None
    except (KeelError, ValueError, TypeError) as exc:
        text = exc.message if isinstance(exc, KeelError) else str(exc)
        raise InvalidInput(
            f"cannot score {label} by {metric} on {data.source!r}: {text[:500]}"
        ) from None
