"""A Keel home seeded for the web UI's tests: real runs with metrics over steps, params,
tags, an artifact, a dataset input, a registered model with an alias and a model card,
hostile names, and the audit entries all of this writes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HOSTILE = "<script>alert(1)</script>"
SWEEP_RUNS = 62  # more than one page of the runs table
UI_WAIT_MS = 30_000  # each browser wait's bound (page, locator, expect), not a timing assertion


@dataclass(frozen=True)
class Seeded:
    """What the seeded home holds, by id."""

    home: Path
    experiment_id: str
    hostile_experiment_id: str
    model_run_id: str
    hostile_run_id: str
    best_run_id: str
    worst_run_id: str
    model: str = "iris-classifier"


def _seed(home: Path) -> Seeded:
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import keel

    iris = load_iris(as_frame=True)
    X, y = iris.data, iris.target
    rng = np.random.default_rng(7)
    ids: list[str] = []
    for i in range(SWEEP_RUNS):
        c = round(0.01 * (i + 1), 2)
        with keel.start_run(experiment="iris-sweep", run_name=f"sweep-{i:02d}") as run:
            run.log_params({"C": c, "solver": "lbfgs" if i % 2 else "saga", "seed": 7})
            for step in range(8):
                run.log_metrics(
                    {"loss": 1.0 / (step + 1 + c), "accuracy": 0.6 + 0.004 * i + 0.01 * step},
                    step=step,
                )
            if i == 0:
                run.log_metrics({f"extra/m{k:02d}": float(rng.random()) for k in range(30)})
        ids.append(run.run_id)
    with keel.start_run(experiment="iris-sweep", run_name=HOSTILE, tags={"note": HOSTILE}) as run:
        run.log_params({"C": 5.0, "solver": HOSTILE, "seed": 7})
        run.log_metric("accuracy", 0.5, step=0)
    hostile_run_id = run.run_id
    model = LogisticRegression(max_iter=300).fit(X, y)
    with keel.start_run(experiment="iris-sweep", run_name="final-model") as run:
        run.log_params({"C": 1.0, "solver": "lbfgs", "seed": 7})
        for step in range(5):
            run.log_metric("loss", 0.5 / (step + 1), step=step)
        run.log_metric("accuracy", float(model.score(X, y)), step=4)
        run.log_dataset(X, name="iris", context="training")
        run.log_text("features: sepal and petal sizes\n", "notes/readme.txt")
        run.log_model(model, "model", input_example=X.head(3))
    model_run_id = run.run_id
    keel.register_model(
        f"runs:/{model_run_id}/model", "iris-classifier", description="Iris species"
    )
    keel.set_alias("iris-classifier", "champion", 1)
    keel.set_model_card(
        "iris-classifier",
        1,
        intended_use=f"Classify iris flowers. **Not** for medical use. {HOSTILE} "
        "<img src=x onerror=alert(2)> [click](javascript:alert(3))",
    )
    hostile = keel.create_experiment(HOSTILE, description=HOSTILE)
    return Seeded(
        home=home,
        experiment_id=keel.get_run(model_run_id).experiment_id,
        hostile_experiment_id=hostile.experiment_id,
        model_run_id=model_run_id,
        hostile_run_id=hostile_run_id,
        best_run_id=ids[-1],
        worst_run_id=ids[0],
    )


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A Keel home seeded once per session (the tests only read it)."""
    from tests.conftest import _reset

    home = tmp_path_factory.mktemp("ui") / "keel-home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEEL_HOME", str(home))
        mp.delenv("KEEL_TRACKING_URI", raising=False)
        mp.delenv("KEEL_ARTIFACT_URI", raising=False)
        _reset()
        try:
            seeded = _seed(home)
        finally:
            _reset()
    yield seeded
    _reset()


@pytest.fixture(scope="session")
def ui_client(seeded: Seeded) -> Iterator[object]:
    """A TestClient on an app serving the seeded home."""
    import warnings

    with warnings.catch_warnings():  # starlette warns that it prefers httpx2 to httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from keel.config import load_settings
    from keel.server import create_app

    with TestClient(create_app(settings=load_settings(seeded.home))) as client:
        yield client


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, so fixtures can see a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def live_url(seeded: Seeded) -> Iterator[str]:
    """A real Keel server on 127.0.0.1 serving the seeded home."""
    from tests.live_server import running_server

    with running_server(seeded.home) as url:
        yield url


# Module scope, not session: while Playwright's sync API is open, this thread's asyncio
# "running loop" is Playwright's (driven by greenlets), so asyncio.run() and code that adopts
# the running loop fail or hang in any later test of the same worker.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Debian Chromium for the session, driven by Playwright."""
    if not CHROMIUM.is_file():
        pytest.skip(
            f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(
    browser: Any, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """A fresh browser page; on a failed test its screenshot is saved and its path printed.

    Any JavaScript dialog (an ``alert`` injected through user input), page error or console
    error (a Content-Security-Policy violation among them) fails the test.
    """
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    from playwright.sync_api import expect

    # on a loaded 2-core CI machine a page load or a chart took over 10 s, and
    # Playwright's expect() waits 5 s unless told
    page.set_default_timeout(UI_WAIT_MS)
    expect.set_options(timeout=UI_WAIT_MS)
    problems: list[str] = []
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def on_console(message: Any) -> None:
        # Error pages the tests open on purpose log "Failed to load resource"; their
        # statuses are asserted where they are opened.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(f"console error: {message.text}")

    page.on("console", on_console)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = tmp_path_factory.getbasetemp() / "ui-screenshots"
        folder.mkdir(exist_ok=True)
        shot = folder / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failed page ({page.url}): {shot}")
    context.close()
    assert not problems, problems
