"""One window's rows of one model version: data quality, drift and live performance.

The inputs are the ``input.<column>`` columns of the answered (status 200), sampled rows,
named without the prefix. Segments of different versions are read together (union by
name), so a column that is null in every row of a version is taken as one the version did
not receive, and reported by ``quality`` as a missing column, not as 100 % missing values.

Performance uses the answered rows with feedback: ``target_label`` where it is set,
``target`` otherwise, against ``output.predict``, with the ``output.predict_proba.<j>``
columns as class probabilities (see ``keel.monitoring.performance``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from keel.errors import InvalidInput
from keel.monitoring.performance import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    Decay,
    Performance,
    decay,
    performance,
)

if TYPE_CHECKING:
    import pandas as pd

    from keel.monitoring._profile import ReferenceProfile
    from keel.monitoring._quality import QualityReport
    from keel.monitoring.results import DriftReport

__all__ = ["VersionWindow", "version_window"]

INPUT, PREDICT, PROBA = "input.", "output.predict", re.compile(r"output\.predict_proba\.(\d+)")


@dataclass(frozen=True)
class VersionWindow:
    """What one model version saw and did in one window; ``notes`` say why a part is absent."""

    model: str
    version: str
    requests: int
    rows: int
    sampled_rows: int
    labelled_rows: int
    quality: QualityReport | None = None
    drift: DriftReport | None = None
    performance: Performance | None = None
    decay: Decay | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the window as JSON-ready data (drift without its plot distributions)."""
        return {
            "model": self.model,
            "version": self.version,
            "requests": self.requests,
            "rows": self.rows,
            "sampled_rows": self.sampled_rows,
            "labelled_rows": self.labelled_rows,
            "quality": None if self.quality is None else self.quality.to_dict(),
            "drift": None if self.drift is None else drift_summary(self.drift),
            "performance": None if self.performance is None else self.performance.to_dict(),
            "decay": None if self.decay is None else self.decay.to_dict(),
            "notes": dict(self.notes),
        }


def drift_summary(report: DriftReport) -> dict[str, Any]:
    """Return the drift verdict and each column's method, statistic and verdict."""
    import math

    def clean(value: float | None) -> float | None:
        return value if value is None or math.isfinite(value) else None

    return {
        "share": report.share,
        "dataset_drifted": report.dataset_drifted,
        "drifted_columns": [c.column for c in report.columns if c.drifted],
        "columns": {
            c.column: {
                "method": c.method,
                "statistic": clean(c.statistic),
                "p_value": clean(c.p_value),
                "drifted": c.drifted,
            }
            for c in report.columns
        },
        "skipped": dict(report.skipped),
    }


def inputs_of(rows: pd.DataFrame) -> pd.DataFrame:
    """Return the sampled, answered rows' inputs, unprefixed, all-null columns dropped."""
    names = [c for c in rows.columns if isinstance(c, str) and c.startswith(INPUT)]
    keep = _ok(rows)
    if "sampled" in rows.columns:
        keep = keep & rows["sampled"].fillna(False).astype(bool).to_numpy()
    frame = rows.loc[keep, names]
    frame = frame.loc[:, frame.notna().any(axis=0).to_numpy()] if len(frame) else frame
    return frame.rename(columns=lambda c: c[len(INPUT) :])


def _ok(rows: pd.DataFrame) -> Any:
    import pandas as pd

    return (pd.to_numeric(rows["status"], errors="coerce") == 200).to_numpy(copy=True)


def _task(labelled: pd.DataFrame, offline: Mapping[str, float]) -> str | None:
    import pandas as pd

    if "target_label" in labelled.columns and labelled["target_label"].notna().any():
        return "classification"
    if any(PROBA.fullmatch(str(c)) for c in labelled.columns):
        return "classification"
    if PREDICT in labelled.columns and not pd.api.types.is_numeric_dtype(labelled[PREDICT]):
        return "classification"
    has_cls = any(m in offline for m in CLASSIFICATION_METRICS)
    has_reg = any(m in offline for m in REGRESSION_METRICS)
    if has_cls != has_reg:
        return "classification" if has_cls else "regression"
    return None


def _performance(
    rows: pd.DataFrame, offline: Mapping[str, float], tolerance: float, notes: dict[str, str]
) -> tuple[int, Performance | None, Decay | None]:
    import numpy as np

    has_target = np.zeros(len(rows), dtype=bool)
    for name in ("target", "target_label"):
        if name in rows.columns:
            has_target |= rows[name].notna().to_numpy()
    labelled = rows.loc[has_target & _ok(rows)]
    if len(labelled) == 0:
        notes["performance"] = "no answered row has feedback yet"
        return 0, None, None
    if PREDICT not in labelled.columns or labelled[PREDICT].isna().all():
        notes["performance"] = f"the log has no {PREDICT} column for these rows"
        return len(labelled), None, None
    target: Any = labelled["target"] if "target" in labelled.columns else None
    if "target_label" in labelled.columns and labelled["target_label"].notna().any():
        label = labelled["target_label"]
        numeric = target.map(_label_text) if target is not None else None
        target = label.where(label.notna(), numeric) if numeric is not None else label
    proba_cols = sorted(
        (c for c in labelled.columns if PROBA.fullmatch(str(c))),
        key=lambda c: int(PROBA.fullmatch(str(c)).group(1)),  # type: ignore[union-attr]
    )
    proba = labelled[proba_cols].to_numpy(dtype=np.float64) if len(proba_cols) >= 2 else None
    try:
        perf = performance(labelled[PREDICT], target, proba=proba, task=_task(labelled, offline))
    except InvalidInput as exc:
        notes["performance"] = str(exc)
        return len(labelled), None, None
    return len(labelled), perf, decay(perf.metrics, offline, tolerance=tolerance)


def _label_text(value: Any) -> Any:
    if value is None or math.isnan(value):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


def version_window(
    rows: pd.DataFrame,
    *,
    model: str,
    version: str,
    reference: ReferenceProfile | str | None,
    offline: Mapping[str, float],
    tolerance: float,
) -> VersionWindow:
    """Return the ``VersionWindow`` of one version's rows in one window.

    ``reference`` is the version's training profile, or why it has none (quality and drift
    are then absent with that note); ``offline`` its run's metrics.
    """
    from keel.monitoring._drift import drift
    from keel.monitoring._profile import ReferenceProfile
    from keel.monitoring._quality import quality

    notes: dict[str, str] = {}
    requests = int(rows["request_id"].nunique())
    inputs = inputs_of(rows)
    quality_report = drift_report = None
    if not isinstance(reference, ReferenceProfile):
        notes["quality"] = notes["drift"] = reference or "the version has no reference profile"
    elif len(inputs) == 0:
        notes["quality"] = notes["drift"] = "no sampled inputs of answered requests"
    else:
        if inputs.shape[1] == 0:  # no input column at all: every reference column is missing
            from keel.monitoring._quality import QualityReport

            quality_report = QualityReport(
                rows=len(inputs), columns=(), missing_columns=tuple(reference.columns)
            )
        else:
            quality_report = quality(reference, inputs)
        try:
            drift_report = drift(reference, inputs)
        except InvalidInput as exc:
            notes["drift"] = str(exc)
    labelled, perf, dec = _performance(rows, offline, tolerance, notes)
    return VersionWindow(
        model=model,
        version=version,
        requests=requests,
        rows=len(rows),
        sampled_rows=len(inputs),
        labelled_rows=labelled,
        quality=quality_report,
        drift=drift_report,
        performance=perf,
        decay=dec,
        notes=notes,
    )
