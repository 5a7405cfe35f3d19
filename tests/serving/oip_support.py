"""Helpers for the REST model-server tests: a registered breast-cancer model, gated models.

``home_with_churn`` makes a Keel home outside any test (module fixtures share one served
model), logs a ``StandardScaler + LogisticRegression`` pipeline fitted on breast_cancer and
registers it as ``churn`` version 1 with the alias ``champion``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

WAIT_S = 20.0


@dataclass(frozen=True)
class Churn:
    """The registered pipeline, its training frame and the home it lives in."""

    uri: str
    model: Any
    X: Any
    home: Path


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
    """Point Keel at a fresh home in ``path`` for the block."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(path))
        mp.delenv("KEEL_TRACKING_URI", raising=False)
        mp.delenv("KEEL_ARTIFACT_URI", raising=False)
        reset_keel()
        try:
            yield path
        finally:
            reset_keel()


def register_churn(home: Path) -> Churn:
    """Fit, log and register the churn pipeline in the current home (alias champion)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import keel

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with keel.start_run(experiment="serving") as run:
        run.log_model(model, "model", input_example=X.head(5))
    version = keel.register_model(f"runs:/{run.run_id}/model", "churn")
    keel.set_alias("churn", "champion", version.version)
    return Churn("models:/churn@champion", model, X, home)


class Gated:
    """A model whose predict blocks on ``gate`` once armed; counts calls and rows."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail = False

    def arm(self) -> None:
        """Block the next predict calls until ``gate.set()``."""
        self.entered.clear()
        self.gate.clear()

    def predict(self, data: Any) -> Any:
        self.entered.set()
        if not self.gate.wait(WAIT_S):
            raise RuntimeError("the test never opened the gate")
        if self.fail:
            raise RuntimeError("this model cannot predict")
        if self.inner is not None:
            return self.inner.predict(data)
        return np.asarray(data, dtype=float).sum(axis=1)


def loaded(model: Any, *, columns: list[str], example: list[list[float]] | None) -> Any:
    """A ``LoadedModel`` (pyfunc flavor) around ``model`` with float64 columns ``columns``."""
    from keel.registry.packaging import LoadedModel, ModelInfo
    from keel.registry.signature import ColumnSpec, Schema, Signature

    schema = Schema(tuple(ColumnSpec(c, "float64") for c in columns), "dataframe")
    example_json = None if example is None else {"columns": columns, "data": example}
    info = ModelInfo(
        flavor="pyfunc", signature=Signature(schema), input_example=example_json, meta={}
    )
    return LoadedModel(model, info=info)


@contextmanager
def triton_client(url: str) -> Iterator[Any]:
    """A ``tritonclient.http`` client for ``http://host:port``, closed after the block.

    The client's ``__del__`` closes it again, and gevent refuses that from another thread
    (the garbage collector may run in a server thread): closing makes the second a no-op.
    """
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=WAIT_S)
    try:
        yield client
    finally:
        client.close()
        client.close = lambda: None  # type: ignore[method-assign]


def error_of(response: Any) -> str:
    """The protocol error message of a response; fails unless the body is exactly {error}."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str)
    assert body["error"]
    return body["error"]
