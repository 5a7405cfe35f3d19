"""The demo's hyperparameter search space: three model families, one Optuna trial each.

``suggest(trial)`` picks a family and its hyperparameters (the candidate families the
demo compares: logistic regression, random forest, gradient boosting), ``build(params)``
makes the unfitted scikit-learn model those params describe, and ``describe(params)``
says it in a few words. Every model is seeded, so equal params make equal models.
"""

from __future__ import annotations

from typing import Any

from keel.demo.candidates import RANDOM_STATE
from keel.errors import InvalidInput

__all__ = ["FAMILIES", "build", "describe", "suggest"]

FAMILIES = ("logistic_regression", "random_forest", "gradient_boosting")
_SHORT = {"logistic_regression": "logreg", "random_forest": "rf", "gradient_boosting": "gb"}


def suggest(trial: Any) -> dict[str, Any]:
    """Return the params a trial suggests: ``family`` and that family's hyperparameters."""
    family = trial.suggest_categorical("family", list(FAMILIES))
    if family == "logistic_regression":
        return {"family": family, "C": trial.suggest_float("C", 0.01, 100.0, log=True)}
    if family == "random_forest":
        return {
            "family": family,
            "n_estimators": trial.suggest_int("n_estimators", 25, 150, step=25),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
        }
    return {
        "family": family,
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "n_estimators": trial.suggest_int("n_estimators", 50, 150, step=25),
        "max_depth": trial.suggest_int("max_depth", 2, 4),
    }


def build(params: dict[str, Any]) -> Any:
    """Return the unfitted model ``params`` describe; ``InvalidInput`` for an unknown family."""
    family = params.get("family")
    try:
        if family == "logistic_regression":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import Pipeline
            from sklearn.preprocessing import StandardScaler

            # Scaled inputs let lbfgs converge in well under max_iter (no ConvergenceWarning).
            classify = LogisticRegression(C=float(params["C"]), max_iter=5000)
            return Pipeline([("scale", StandardScaler()), ("classify", classify)])
        if family == "random_forest":
            from sklearn.ensemble import RandomForestClassifier

            return RandomForestClassifier(
                n_estimators=int(params["n_estimators"]),
                max_depth=int(params["max_depth"]),
                random_state=RANDOM_STATE,
            )
        if family == "gradient_boosting":
            from sklearn.ensemble import GradientBoostingClassifier

            return GradientBoostingClassifier(
                learning_rate=float(params["learning_rate"]),
                n_estimators=int(params["n_estimators"]),
                max_depth=int(params["max_depth"]),
                random_state=RANDOM_STATE,
            )
    except KeyError as exc:
        raise InvalidInput(f"params of family {family!r} lack {exc.args[0]!r}: {params}") from None
    raise InvalidInput(f"unknown model family {family!r}; use one of {', '.join(FAMILIES)}")


def describe(params: dict[str, Any]) -> str:
    """Return the params as ``rf n_estimators=50, max_depth=4`` (floats to 3 digits)."""
    family = str(params.get("family"))
    rest = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in params.items()
        if k != "family"
    )
    return f"{_SHORT.get(family, family)} {rest}".strip()
