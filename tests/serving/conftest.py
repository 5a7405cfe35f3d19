"""Serving fixtures: real scikit-learn models registered in a fresh Keel home.

``classifier`` is a random forest on sklearn's breast-cancer data (a DataFrame signature of
30 named float columns, with ``predict_proba``); ``regressor`` is a ridge regression on the
diabetes data fitted on a numpy array (a tensor signature).
"""

from __future__ import annotations

from typing import Any

import pytest
from serving_support import Registered, register


@pytest.fixture
def classifier(keel_env: Any) -> Registered:
    """A random forest on breast_cancer (DataFrame input), registered as cancer/1."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(X, y)
    return Registered(register(model, X, "cancer"), model, X, y)


@pytest.fixture
def regressor(keel_env: Any) -> Registered:
    """A ridge regression on diabetes (a float64 ndarray input), registered as diabetes/1."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    model = Ridge(alpha=0.5).fit(X, y)
    return Registered(register(model, X, "diabetes"), model, X, y)
