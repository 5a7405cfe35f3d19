"""Helpers for the deployment data-plane tests: real scikit-learn versions in a Keel home.

``build_models`` registers, on sklearn's breast-cancer data (30 named float columns):

- ``cancer`` 1: ``StandardScaler + LogisticRegression``;
- ``cancer`` 2: a random forest (answers mostly like 1);
- ``cancer`` 3: a depth-1 tree on one feature (answers often unlike 1);
- ``broken`` 1: an estimator that predicts while it is logged but raises once loaded
  back from the registry, so its warm-up fails (a version that must never take traffic);
- ``diabetes`` 1: a ridge regression fitted on a numpy array (a tensor signature).

Nothing here is a test; the module is shared by the ``test_router*`` and
``test_zero_downtime*`` modules (``from test_serving_support import ...``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

T = TypeVar("T")
WAIT_S = 30.0


class LoadsBroken(ClassifierMixin, BaseEstimator):
    """Predicts zeros until unpickled; a copy loaded from the registry raises on predict."""

    def fit(self, X: Any, y: Any) -> LoadsBroken:
        self.n_features_in_ = np.asarray(X).shape[1]
        self.classes_ = np.unique(y)
        self.loaded_ = False
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.loaded_ = True

    def predict(self, X: Any) -> np.ndarray:
        if self.loaded_:
            raise RuntimeError("this version is broken once deployed")
        return np.zeros(len(X), dtype=np.int64)


@dataclass(frozen=True)
class Models:
    """The home the versions live in, the data, and each fitted estimator by backend key."""

    home: Path
    X: Any
    estimators: dict[str, Any]

    def predict(self, key: str, rows: Any) -> np.ndarray:
        """Return what the estimator registered as ``key`` predicts in-process."""
        import pandas as pd

        frame = (
            rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=self.X.columns)
        )
        return self.estimators[key].predict(frame)


def reset_keel() -> None:
    """Forget cached settings and stores, as the suite's ``keel_env`` does."""
    import keel.stores
    from keel.config import reset_settings
    from keel.store.artifacts import forget_artifact_stores
    from keel.store.database import forget_databases

    reset_settings()
    forget_databases()
    forget_artifact_stores()
    keel.stores._current = None


@contextmanager
def keel_home(path: Path) -> Iterator[Path]:
    """Point Keel at the home in ``path`` for the block."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(path))
        mp.delenv("KEEL_TRACKING_URI", raising=False)
        mp.delenv("KEEL_ARTIFACT_URI", raising=False)
        mp.delenv("KEEL_AUTH", raising=False)
        reset_keel()
        try:
            yield path
        finally:
            reset_keel()


def register(estimator: Any, X: Any, name: str) -> str:
    import keel

    with keel.start_run(experiment="deploy-serving") as run:
        run.log_model(estimator, "model", input_example=X[:5])
    version = keel.register_model(f"runs:/{run.run_id}/model", name)
    return f"{name}/{version.version}"


def build_models(home: Path) -> Models:
    """Fit and register the versions listed in the module docstring in ``home``."""
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    cancer = [
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
        # a stump on one feature, behind the same 30-column signature
        make_pipeline(_OneColumn(), DecisionTreeClassifier(max_depth=1, random_state=0)),
    ]
    estimators: dict[str, Any] = {}
    with keel_home(home):
        for model in cancer:
            estimators[register(model.fit(X, y), X, "cancer")] = model
        estimators[register(LoadsBroken().fit(X, y), X, "broken")] = None
        Xd, yd = load_diabetes(return_X_y=True)
        estimators[register(Ridge(alpha=0.5).fit(Xd, yd), Xd, "diabetes")] = None
    return Models(home, X, estimators)


class _OneColumn(BaseEstimator):
    """Keeps only 'mean texture' (so a 30-column version can be a weak stump)."""

    def fit(self, X: Any, y: Any = None) -> _OneColumn:
        return self

    def transform(self, X: Any) -> Any:
        return X[["mean texture"]]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a fresh event loop (bounded by WAIT_S)."""
    return asyncio.run(asyncio.wait_for(coro, WAIT_S * 4))


@contextmanager
def live_server(app: Any) -> Iterator[tuple[str, asyncio.AbstractEventLoop]]:
    """Serve ``app`` (lifespan on) with uvicorn on 127.0.0.1 in a thread; yield its URL and
    its event loop (for coroutines that must run on the server's loop), then stop it."""
    import uvicorn

    from keel.serving._uvicorn import config

    server = uvicorn.Server(config(app, host="127.0.0.1", port=0))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(server.serve()), name="keel-test-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(WAIT_S)
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", loop
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        if not thread.is_alive():
            loop.close()
