"""The demo's data and how a model is scored on it (the models: ``keel.demo.search_space``).

Everything is seeded (``RANDOM_STATE``), so two demos on the same machine log the same
params and metrics. scikit-learn, numpy and pandas are imported only when a function here
runs, so importing ``keel.demo`` stays light.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATASET",
    "RANDOM_STATE",
    "VALIDATION_FRACTION",
    "DemoData",
    "Evaluation",
    "evaluate",
    "load_data",
    "loss_curve",
]

RANDOM_STATE = 42
VALIDATION_FRACTION = 0.2
DATASET = "sklearn.datasets.load_breast_cancer"


@dataclass(frozen=True)
class DemoData:
    """The breast-cancer data, split once into training and validation parts."""

    X_train: pd.DataFrame
    X_val: pd.DataFrame
    y_train: pd.Series
    y_val: pd.Series
    class_names: tuple[str, ...]

    @property
    def n_features(self) -> int:
        """How many feature columns there are."""
        return self.X_train.shape[1]


def load_data() -> DemoData:
    """Return scikit-learn's bundled breast-cancer data, split stratified and seeded."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    bunch = load_breast_cancer(as_frame=True)
    X_train, X_val, y_train, y_val = train_test_split(
        bunch.data,
        bunch.target,
        test_size=VALIDATION_FRACTION,
        stratify=bunch.target,
        random_state=RANDOM_STATE,
    )
    return DemoData(X_train, X_val, y_train, y_val, tuple(str(n) for n in bunch.target_names))


@dataclass(frozen=True)
class Evaluation:
    """A fitted model's validation scores and confusion matrix."""

    metrics: dict[str, float]
    confusion: list[list[int]]

    def confusion_json(self, class_names: tuple[str, ...]) -> str:
        """Return the confusion matrix as JSON: rows are true classes, columns predicted."""
        doc = {
            "labels": list(class_names),
            "rows": "true class",
            "columns": "predicted class",
            "matrix": self.confusion,
        }
        return json.dumps(doc, indent=2) + "\n"


def evaluate(model: Any, X: pd.DataFrame, y: pd.Series) -> Evaluation:
    """Return validation accuracy, F1, ROC AUC and log loss of a fitted classifier."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, roc_auc_score

    proba = model.predict_proba(X)
    predicted = model.classes_[proba.argmax(axis=1)]
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "roc_auc": float(roc_auc_score(y, proba[:, 1])),
        "log_loss": float(log_loss(y, proba, labels=model.classes_)),
    }
    confusion = confusion_matrix(y, predicted, labels=model.classes_).tolist()
    return Evaluation(metrics, confusion)


def loss_curve(model: Any, X: pd.DataFrame, y: pd.Series) -> list[tuple[int, float]]:
    """Return ``(step, validation log loss)`` as an ensemble grows, one point per member.

    Gradient boosting: the model after each boosting stage. Random forest: the forest of
    its first k trees (their averaged probabilities, as the forest itself computes them).
    Models that are not ensembles have no curve (an empty list).
    """
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    if isinstance(model, GradientBoostingClassifier):
        stages = np.stack(list(model.staged_predict_proba(X)))
    elif isinstance(model, RandomForestClassifier):
        # The trees were fitted on a plain float32 array; give them the same (no name check).
        values = X.to_numpy(dtype=np.float32)
        trees = np.stack([tree.predict_proba(values) for tree in model.estimators_])
        stages = np.cumsum(trees, axis=0) / np.arange(1, len(trees) + 1)[:, None, None]
    else:
        return []
    # Log loss of every stage at once: the probability each stage gave the true class,
    # clipped as sklearn.metrics.log_loss clips it.
    true_column = np.searchsorted(model.classes_, np.asarray(y))
    p_true = stages[:, np.arange(len(true_column)), true_column]
    eps = np.finfo(stages.dtype).eps
    losses = -np.log(np.clip(p_true, eps, 1 - eps)).mean(axis=1)
    return [(step, float(loss)) for step, loss in enumerate(losses, start=1)]
